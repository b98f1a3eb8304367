"""Executors: a batch on a local Ray (started by the run itself) ends as the same batch run locally."""

from __future__ import annotations

import contextlib
import csv
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_IMGSZ, make_image
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.writers import read_jsonl

runner = CliRunner()


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _comparable(record: dict) -> dict:  # type: ignore[type-arg]
    """A record without what legitimately differs between two runs: timings and float noise."""
    rest = {k: v for k, v in record.items() if k not in ("speed_ms", "detections")}
    return {**rest, "classes": [d["class_id"] for d in record["detections"]]}


def test_ray_run_equals_local_run(yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    pytest.importorskip("openvino")
    import ray

    monkeypatch.chdir(tmp_path)  # relative paths, as users type them: workers must still find the files
    folder = Path("imgs")
    for i in range(10):  # numeric names: COCO image ids do not depend on the order records arrive
        make_image(folder / f"{i:03d}.jpg", i)
    (folder / "099.png").write_text("not a picture")
    common = ["yolo", "image", str(folder), "-m", str(yolo_pt), "--imgsz", str(SMALL_IMGSZ)]
    common += ["--conf", "1e-6", "--max-det", "4", "-f", "csv", "-f", "txt", "-f", "coco", "-q"]
    # OpenVINO: each Ray worker plans the backend on its node and loads the node's cached export (made
    # by the local run here; test_backends covers a worker's planning and the one-export-at-a-time lock).
    common += ["--backend", "openvino"]

    local = runner.invoke(app, [*common, "-o", "local"])
    on_ray = runner.invoke(
        app, [*common, "-o", "ray", "--executor", "ray", "--ray-workers", "2", "--batch", "2"]
    )
    assert not ray.is_initialized(), "the run shuts down the Ray it started"
    assert local.exit_code == on_ray.exit_code == 1, on_ray.output  # the broken file fails on both
    a, b = tmp_path / "local", tmp_path / "ray"
    assert _files(a) == _files(b)

    rec_a = {r["source"]: r for r in read_jsonl(a / "results.jsonl")}
    rec_b = {r["source"]: r for r in read_jsonl(b / "results.jsonl")}
    assert len(rec_b) == len(read_jsonl(b / "results.jsonl")) == 11  # each input once, in any order
    assert {k: _comparable(r) for k, r in rec_a.items()} == {k: _comparable(r) for k, r in rec_b.items()}
    for source in rec_a:
        boxes = [[d["xyxy"] for d in x[source]["detections"]] for x in (rec_a, rec_b)]
        assert np.allclose(*boxes, atol=0.05), source

    def rows(out: Path) -> list[tuple[str, str, str]]:
        return sorted(
            (r["source"], r["class_id"], r["error"]) for r in csv.DictReader((out / "results.csv").open())
        )

    def coco(out: Path) -> list[tuple[int, int]]:
        return sorted(
            (d["image_id"], d["category_id"]) for d in json.loads((out / "coco_results.json").read_text())
        )

    assert rows(a) == rows(b) and coco(a) == coco(b)
    for label in (a / "labels").rglob("*.txt"):
        other = (b / label.relative_to(a)).read_text().split()
        assert np.allclose(np.array(label.read_text().split(), float), np.array(other, float), atol=1e-3)


def test_missing_ray_is_one_line_exit_2(
    rtdetr_pt: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    argv = ["image", str(images), "-m", str(rtdetr_pt), "--executor", "ray", "-o", str(tmp_path / "o")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: --executor ray needs the ray package: pip install 'detect-cli[ray]' (on every node)"
    ]
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_shard_no_worker_finished_is_recorded_as_failed_and_retried_only_on_request(
    images: Path, tmp_path: Path, fake_yolo: Path
) -> None:
    from fakes import FakeDetector

    from detect_cli.executors import _failed
    from detect_cli.models import PredictOptions, resolve
    from detect_cli.resume import DoneIndex, plan
    from detect_cli.sources import discover_images
    from detect_cli.writers import JsonlWriter

    items = discover_images([str(images)])
    detector = FakeDetector(resolve(str(fake_yolo), "yolo"), PredictOptions())
    detector.weights_sha256 = "ab" * 32
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        for r in _failed(items, detector, "worker failed: RayActorError: the actor died"):
            sink.write(r, r.source, None)  # type: ignore[arg-type]
    index = DoneIndex.load(tmp_path / "results.jsonl")
    assert index.weights == {"ab" * 32: detector.name} and index.unweighed == 0
    assert plan(items, index).todo == [] and plan(items, index).skipped_failed == 4
    assert plan(items, index, retry_failed=True).todo == items


def test_records_of_a_shard_whose_worker_died_name_the_weights_so_resume_checks_them(
    fake_yolo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that dies on every try of its shard (Ray restarts it twice): the driver records
    the shard's inputs as failed, naming the run's weights. Resuming the folder, all failure records,
    with the same weights says nothing of unnamed weights; with other weights of the same name it is
    refused in one line."""
    pytest.importorskip("ray")
    import hashlib
    import os

    from detect_cli import executors

    class DyingWorker(executors.BatchWorker):  # local: Ray sends it by value to its worker processes
        def __init__(self, spec: executors.WorkerSpec) -> None:
            self.spec, self.error, self.detector = spec, None, None  # no model: it never gets that far

        def process(self, shard: list) -> list:  # type: ignore[type-arg]
            os._exit(1)  # the worker process dies, as on a lost node or out of memory

    monkeypatch.setattr(executors, "BatchWorker", DyingWorker)
    folder = tmp_path / "imgs"
    for i in range(3):
        make_image(folder / f"{i}.jpg", i)
    out = tmp_path / "out"
    common = ["yolo", "image", str(folder), "-o", str(out), "-q"]
    died = runner.invoke(app, [*common, "-m", str(fake_yolo), "--executor", "ray", "--ray-workers", "1"])
    assert died.exit_code == 1, died.output
    records = read_jsonl(out / "results.jsonl")
    digest = hashlib.sha256(fake_yolo.read_bytes()).hexdigest()
    assert len(records) == 3 and all(r["error"].startswith("worker failed: ") for r in records)
    assert {r["weights_sha256"] for r in records} == {digest}

    before = (out / "results.jsonl").read_bytes()
    same = runner.invoke(app, [*common, "-m", str(fake_yolo), "--resume"])
    assert "Traceback" not in same.output and same.exit_code in (0, 1), same.output
    assert "do not say which weights" not in same.stderr
    other = tmp_path / "other" / fake_yolo.name  # the same name, other weights
    other.parent.mkdir()
    other.write_bytes(fake_yolo.read_bytes() + b" retrained")
    refused = runner.invoke(app, [*common, "-m", str(other), "--resume"])
    assert refused.exit_code == 2, refused.output
    [line] = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
    assert f"weights sha256 {digest[:12]}" in line and str(other) in line, line
    assert (out / "results.jsonl").read_bytes() == before


# --- a cluster that is not there --------------------------------------------------------------------


def _ray_child(
    fake_yolo: Path, tmp_path: Path, address: str, deadline: float = 30.0
) -> subprocess.Popen[bytes]:
    """`detect yolo image … --ray-address ADDRESS` in a real process (the fake detector: no model), its
    stderr in a file."""
    from conftest import fake_cli_argv, fake_cli_env

    make_image(tmp_path / "in" / "a.jpg")
    argv = fake_cli_argv(
        "yolo", "image", tmp_path / "in", "-m", fake_yolo, "-o", tmp_path / "o", "--ray-address", address
    )
    err = tempfile.TemporaryFile()
    env = {**fake_cli_env(), "DETECT_RAY_CONNECT_S": str(deadline)}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    proc.err_file = err  # type: ignore[attr-defined]
    return proc


def _ended(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str]:
    """(exit code, stderr); a child still running after `timeout` s is killed and the test fails."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still waiting for Ray after {timeout}s")
    err = proc.err_file  # type: ignore[attr-defined]
    err.seek(0)
    return proc.returncode, err.read().decode("utf-8", "replace")


def _ray_lines(err: str) -> list[str]:
    """Lines Ray's C++ core prints (`[2026-… W 123 456] rpc_client.h:153: …`)."""
    return [line for line in err.splitlines() if line.startswith("[") and (".h:" in line or ".cc:" in line)]


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """127.0.0.1:PORT that accepts connections and never says a word; the event is set once one came."""
    server = socket.create_server(("127.0.0.1", 0))
    came, held = threading.Event(), []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])
                came.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}", came
    server.close()
    for conn in held:
        conn.close()


def test_a_closed_port_is_one_line_at_once(fake_yolo: Path, tmp_path: Path) -> None:
    """`--ray-address` to a port nobody listens on: one `error:` line within seconds, exit 2, none of
    Ray's own lines (it used to retry for ever, printing, deaf to Ctrl-C and SIGTERM), and no `-o`
    folder left behind holding only `.detect.lock`."""
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port that was free a moment ago, and is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, err = _ended(_ray_child(fake_yolo, tmp_path, f"127.0.0.1:{port}"), 60)
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot reach Ray at 127.0.0.1:{port} within 30s: Connection refused"], err
    assert not _ray_lines(err) and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()  # a failed start leaves no run folder (it held only its lock)


def test_a_port_that_never_answers_ends_at_the_deadline(
    fake_yolo: Path, tmp_path: Path, silent_server: tuple[str, threading.Event]
) -> None:
    pytest.importorskip("ray")
    address, _ = silent_server
    start = time.monotonic()
    code, err = _ended(_ray_child(fake_yolo, tmp_path, address, deadline=2), 60)
    assert code == 2, err[-2000:]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: cannot reach Ray at {address} within 2s: no answer"
    ]
    assert not _ray_lines(err) and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_while_waiting_for_ray(
    sig: int, fake_yolo: Path, tmp_path: Path, silent_server: tuple[str, threading.Event]
) -> None:
    """A stop while the run waits for a cluster that does not answer: exit 130 / 143 at once, as a stop
    anywhere else, with the resume hint (nothing ran)."""
    pytest.importorskip("ray")
    address, came = silent_server
    proc = _ray_child(fake_yolo, tmp_path, address)
    if not came.wait(60):
        proc.kill()
        pytest.fail("the run never tried the address")
    proc.send_signal(sig)
    code, err = _ended(proc, 15)
    assert code == 128 + sig, err[-2000:]
    assert "To resume:" in err and "Traceback" not in err and not _ray_lines(err), err
