from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from conftest import SMALL_IMGSZ, make_image

from detect_cli.jobs import ImageJob, run_images
from detect_cli.models import PredictOptions, load, resolve
from detect_cli.pipeline import Frame, detect_batch, run
from detect_cli.threads import prefetch
from detect_cli.writers import JsonlWriter, read_jsonl


def test_prefetch_keeps_order_and_runs_ahead() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def slow(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.01 * (5 - i % 5))  # later items finish first
        return i * i

    out = prefetch(range(20), slow, depth=4)
    assert next(out) == 0
    assert len(started) >= 2, "items after the first are read while the first is consumed"
    assert [0, *out] == [i * i for i in range(20)]


@pytest.fixture(scope="module")
def yolo_detector(yolo_pt: Path):  # type: ignore[no-untyped-def]
    return load(resolve(str(yolo_pt), "yolo"), PredictOptions(conf=1e-6, imgsz=SMALL_IMGSZ, max_det=5))


def _frame(name: str, image: np.ndarray | None, error: str | None = None) -> Frame:
    return Frame(name, PurePosixPath(name), image, error)


def test_detect_batch_keeps_order_and_records_unreadable(yolo_detector) -> None:  # type: ignore[no-untyped-def]
    img = np.zeros((40, 60, 3), np.uint8)
    results = detect_batch(
        yolo_detector, [_frame("a", img), _frame("b", None, "empty file"), _frame("c", img)]
    )
    assert [r.source for r in results] == ["a", "b", "c"]
    assert [r.error for r in results] == [None, "empty file", None]
    assert (results[0].width, results[0].height) == (60, 40)
    assert len(results[0].detections) == 5 and results[0].speed_ms is not None


def test_a_failing_model_call_is_recorded_not_fatal(yolo_detector, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(images):  # type: ignore[no-untyped-def]
        raise RuntimeError("out of memory")

    monkeypatch.setattr(yolo_detector, "predict", boom)
    [r] = detect_batch(yolo_detector, [_frame("a", np.zeros((8, 8, 3), np.uint8))])
    assert r.error == "inference failed: RuntimeError: out of memory"


def test_batches_give_the_same_results_as_single_images(yolo_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frames = [_frame(f"{i}", make_image_array(i)) for i in range(5)]
    one = [detect_batch(yolo_detector, [f])[0].detections for f in frames]
    three = [r.detections for chunk in (frames[:3], frames[3:]) for r in detect_batch(yolo_detector, chunk)]
    assert [[d.class_id for d in ds] for ds in one] == [[d.class_id for d in ds] for ds in three]
    for a, b in zip(one, three, strict=True):
        assert np.allclose([d.xyxy for d in a], [d.xyxy for d in b], atol=1e-2)


def make_image_array(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def test_ctrl_c_finalizes_outputs(yolo_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def frames() -> Iterator[Frame]:
        for i in range(3):
            yield _frame(f"{i}", make_image_array(i))
        raise KeyboardInterrupt

    sink = JsonlWriter(tmp_path / "results.jsonl")
    report = run(frames(), yolo_detector, [sink], tmp_path)
    assert report.interrupted and report.summary.processed == 3
    assert [r["source"] for r in read_jsonl(tmp_path / "results.jsonl")] == ["0", "1", "2"]
    assert sink._f.closed


def test_run_images_end_to_end(yolo_detector, images: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (images / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    job = ImageJob(
        (str(images),),
        yolo_detector.ref,
        yolo_detector.options,
        out=tmp_path / "out",
        formats=("jsonl", "csv"),
    )
    seen: list[str] = []
    report, _ = run_images(job, detector=yolo_detector, echo=seen.append)
    rows = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert len(rows) == len(seen) == 5
    assert (report.summary.processed, report.summary.failed) == (4, 1)
    assert {r["source"] for r in rows if r["error"]} == {str(images / "broken.jpg")}
    for rel in ("imgs/a/x.jpg", "imgs/b/x.jpg", "imgs/top.png", "imgs/c/d/deep.jpg"):
        assert (tmp_path / "out" / rel).is_file()
    make_image(images / "later.jpg")  # inputs untouched, outputs elsewhere
    assert sorted(p.name for p in images.rglob("*") if p.is_file()) == sorted(
        ["x.jpg", "x.jpg", "top.png", "deep.jpg", "notes.txt", "broken.jpg", "later.jpg"]
    )


def test_stop_finishes_the_batch_in_flight(yolo_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What a first Ctrl-C does: the batch in hand is written, then the loop ends and reading stops."""
    import threading

    stop = threading.Event()
    pulled: list[int] = []

    def frames() -> Iterator[Frame]:
        for i in range(20):
            pulled.append(i)
            if i == 4:  # Ctrl-C arrives while the second batch is being read
                stop.set()
            yield _frame(f"{i}", make_image_array(i))

    report = run(frames(), yolo_detector, [JsonlWriter(tmp_path / "r.jsonl")], tmp_path, batch=3, stop=stop)
    assert report.interrupted
    assert [r["source"] for r in read_jsonl(tmp_path / "r.jsonl")] == [str(i) for i in range(6)]
    assert len(pulled) == 6


SIGNAL_CHECK = """
import os, signal, sys
from detect_cli.signals import Interrupted, exit_code, stop_on_signals

signum = int(sys.argv[1])
before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
notes = []
with stop_on_signals(lambda: notes.append("stopping")) as stop:
    os.kill(os.getpid(), signum)
    assert stop.is_set() and stop.signum == signum and notes == ["stopping"], (stop.signum, notes)
    try:
        os.kill(os.getpid(), signum)
        raise SystemExit("the second signal did not interrupt")
    except Interrupted as e:
        assert e.signum == signum
assert {s: signal.getsignal(s) for s in before} == before
assert exit_code(signal.SIGINT) == 130 and exit_code(signal.SIGTERM) == 143
print("ok")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_sets_stop_then_a_second_interrupts(signum: int) -> None:
    """Ctrl-C and SIGTERM alike: the first asks the run to stop, the second stops it at once. In a
    process of its own: real signals to the test process would meet whatever handlers other tests'
    libraries (Ray) left behind."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_CHECK, str(int(signum))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
