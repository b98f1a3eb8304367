"""`detect compare` end to end without Typer: what the sources are, and a video compared frame by frame."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import pytest
from conftest import SMALL_IMGSZ, make_image, make_video, read_video, truncate
from test_compare_report import external_refs

from detect_cli.compare.analysis import WHOLE_ANALYSIS
from detect_cli.compare.inputs import source_kind
from detect_cli.compare.job import CompareJob
from detect_cli.compare.loop import run_comparison
from detect_cli.compare.results import CompareSettings
from detect_cli.compare.run import run_compare, spread
from detect_cli.errors import BadOptionError
from detect_cli.models import PredictOptions, load, resolve
from detect_cli.pipeline import image_frames
from detect_cli.render import title_band_height
from detect_cli.sources import discover_images
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl


def _tree(root: Path) -> Path:
    make_image(root / "imgs" / "a.jpg")
    make_video(root / "clips" / "c.mp4", frames=2)
    make_image(root / "both" / "a.jpg")
    make_video(root / "both" / "c.avi", frames=2)
    return root


@pytest.mark.parametrize(
    ("sources", "kind"),
    [
        (["imgs/a.jpg"], "images"),
        (["imgs"], "images"),
        (["clips/c.mp4"], "videos"),
        (["clips"], "videos"),
        (["clips/*.mp4"], "videos"),
        (["0"], "videos"),  # a webcam index
        (["rtsp://127.0.0.1:9/live"], "videos"),
        (["https://example.com/clip.mp4"], "videos"),
        (["https://example.com/bus.jpg"], "images"),
        (["https://example.com/cam"], "images"),  # no video suffix: an image, as `detect image` takes it
        (["missing.mp4"], "images"),  # names nothing: the image run reports it as it always has
        (["imgs", "clips/c.mp4"], None),
        (["both"], "images"),  # a folder holding both: its pictures (and a note about the videos)
        (["imgs", "0"], None),
    ],
)
def test_source_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: list[str], kind: str | None
) -> None:
    monkeypatch.chdir(_tree(tmp_path))
    if kind is None:
        with pytest.raises(BadOptionError, match=r"compare takes images or videos, not both in one run \("):
            source_kind(sources)
    else:
        assert source_kind(sources) == kind


@pytest.mark.parametrize(
    ("total", "k", "expected"),
    [(10, 4, [0, 3, 6, 9]), (5, 4, [0, 1, 3, 4]), (3, 4, [0, 1, 2]), (7, 1, [0]), (0, 4, [])],
)
def test_spread(total: int, k: int, expected: list[int]) -> None:
    assert spread(total, k) == expected


def _job(tmp_path: Path, weights: list[Path], *sources: Path, **kw) -> CompareJob:  # type: ignore[no-untyped-def]
    conf = 0.01
    return CompareJob(
        sources=tuple(map(str, sources)),
        models=tuple(resolve(str(w), "rtdetr") for w in weights),
        options=PredictOptions(conf=conf, imgsz=SMALL_IMGSZ, device="cpu", max_det=5),
        settings=CompareSettings(imgsz=SMALL_IMGSZ, conf=conf, warmup=0),
        out=tmp_path / "out",
        **{"memory": False, **kw},  # memory is measured in the CLI test (a child process per model)
    )


def test_a_video_compared_with_itself(rtdetr_pt: Path, tmp_path: Path) -> None:
    """One decode, the same frames for both: full agreement, and a side-by-side video with the frames
    --vid-stride and --max-frames leave, twice as wide as the source, at its fps / stride."""
    clip = make_video(tmp_path / "clip.mp4", frames=10, fps=10)
    run = run_compare(_job(tmp_path, [rtdetr_pt, rtdetr_pt], clip, vid_stride=2, max_frames=4))
    c, out = run.comparison, run.out
    [pair] = c.pairs
    assert pair.images == 4 and pair.overall.matched == 4 * 5
    assert pair.overall.agreement == 1.0 and pair.overall.mean_iou == pytest.approx(1.0)
    assert c.inputs == 4 and c.failed == () and c.settings.runs == 5 and c.settings.runs_asked == 1
    assert [m.speed.calls for m in c.models] == [20, 20]  # --runs raised: 20 timed calls for a p95
    assert c.video is not None and (c.video.videos, c.video.vid_stride, c.video.max_frames) == (1, 2, 4)
    video_name = f"clip{pick_codec().suffix}"
    assert c.video.side_by_side == (f"side-by-side/{video_name}",) and c.video.codec == str(pick_codec())
    assert read_video(out / "side-by-side" / video_name) == (4, 2 * 128, title_band_height(128) + 96, 5.0)
    for label in ("rtdetr-l-seed0", "rtdetr-l-seed0-2"):
        rows = read_jsonl(out / "detections" / f"{label}.jsonl")
        assert [r["frame"] for r in rows] == [0, 2, 4, 6] and [r["time_s"] for r in rows] == [
            0,
            0.2,
            0.4,
            0.6,
        ]
    # report.html gets a few frames spread over the video; they are also written beside it
    assert [p.source for p in run.pictures] == [f"{clip}, frame {i}" for i in (0, 2, 4, 6)]
    frames = sorted(p.name for p in (out / "side-by-side" / "clip").glob("*.jpg"))
    assert frames == ["000000.jpg", "000002.jpg", "000004.jpg", "000006.jpg"]
    assert cv2.imread(str(out / "side-by-side" / "clip" / "000002.jpg")).shape == (
        title_band_height(128) + 96,
        256,
        3,
    )
    report = json.loads((out / "report.json").read_text())
    assert report["video"]["side_by_side"] == [f"side-by-side/{video_name}"] and report["inputs"] == 4
    assert report["pairs"][0]["overall"]["agreement"] == 1.0
    md = (out / "report.md").read_text()
    assert "4 frames (0 failed) of 1 video, 1 frame in 2, at most 4 per video" in md
    assert f"[side-by-side/{video_name}](side-by-side/{video_name})" in md
    assert "(side-by-side/clip/000002.jpg): agreement 100%" in md  # the gallery: the kept frames
    page = (out / "report.html").read_text()
    # Links to the video and the full pictures beside the report; the thumbnails are embedded.
    assert all(r.startswith("side-by-side/") for r in external_refs(page))
    poster = pick_codec().name == "H.264"  # a browser-playable video has a poster frame, embedded
    assert page.count("data:image/jpeg;base64,") == 4 + 4 + poster  # thumbnails, the viewer's frames
    assert "frame 2, 0:00.20" in page  # each kept frame captioned with its number and time
    assert "Over 4 frames" in page and "frames/s" in page


def test_a_truncated_video_is_compared_up_to_the_damage(rtdetr_pt: Path, tmp_path: Path) -> None:
    clip = truncate(make_video(tmp_path / "cut.avi", frames=12), keep=0.5)
    run = run_compare(_job(tmp_path, [rtdetr_pt, rtdetr_pt], clip, save=True))
    c = run.comparison
    [(source, error)] = c.failed
    decoded = c.models[0].images_ok
    assert source == str(clip) and error.startswith(f"video ends early: decoded {decoded} of 12 frames")
    assert 3 <= decoded < 12 and c.inputs == decoded + 1 and c.pairs[0].images == decoded
    assert c.video is not None
    assert read_video(run.out / c.video.side_by_side[0])[:2] == (decoded, 256)


def test_no_save_writes_no_side_by_side_files(rtdetr_pt: Path, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.avi", frames=3)
    run = run_compare(_job(tmp_path, [rtdetr_pt, rtdetr_pt], clip, save=False))
    assert not (run.out / "side-by-side").exists() and run.comparison.video is not None
    assert run.comparison.video.side_by_side == () and run.comparison.video.codec is None
    assert len(run.pictures) == 3, "report.html still shows the frames"


def test_labels_do_not_apply_to_a_video(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    job = _job(tmp_path, [Path("rtdetr-l.yaml"), Path("yolo11n.yaml")], clip, data=tmp_path / "data.yaml")
    with pytest.raises(BadOptionError, match="--data gives labels for images; a video source has none"):
        run_compare(job)
    assert not (tmp_path / "out").exists(), "refused before anything was loaded or written"


# --- the comparison loop on real models ----------------------------------------------------------------


def _detector(path: Path, conf: float = 0.01):  # type: ignore[no-untyped-def]
    return load(resolve(str(path), "rtdetr"), PredictOptions(conf=conf, imgsz=SMALL_IMGSZ, device="cpu"))


def test_a_model_compared_with_itself_agrees_fully(rtdetr_pt: Path, images: Path) -> None:
    detector = _detector(rtdetr_pt)
    items = discover_images([str(images)])
    seen = []
    c = run_comparison(
        [detector, detector],
        image_frames(items),
        CompareSettings(imgsz=SMALL_IMGSZ, conf=0.01, warmup=1, runs=2),
        on_image=lambda frame, results: seen.append((frame.source, [r.model for r in results])),
    )
    [pair] = c.pairs
    assert (pair.a, pair.b) == ("rtdetr-l-seed0", "rtdetr-l-seed0-2")
    assert pair.overall.matched > 0 and pair.overall.only_a == pair.overall.only_b == 0
    assert pair.overall.agreement == 1.0 and pair.overall.mean_iou == pytest.approx(1.0)
    assert all(row.agreement == 1.0 for row in pair.per_class)
    assert [m.speed.calls for m in c.models] == [8, 8]  # 4 images x 2 runs, warm-up excluded
    assert c.models[0].detections == pair.overall.matched
    assert c.models[0].info.params_m and c.models[0].info.params_m > 30  # RT-DETR-L: ~32 M
    assert c.models[0].info.gflops and c.models[0].info.gflops > 0
    assert len(seen) == 4 and c.failed == () and c.labels is None


def _fake(path: Path):  # type: ignore[no-untyped-def]
    from detect_cli.backends import Plan, load_detector

    return load_detector(resolve(str(path), "rtdetr"), PredictOptions(conf=0.01, device="cpu"), Plan())


def test_ctrl_c_while_analysing_reports_the_measurements(
    fake_models: dict[str, Path], images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C during the analysis (the loop's handlers are gone by then, so Python's own
    handler raises KeyboardInterrupt, as here): the comparison comes back, measured, marked interrupted,
    without an analysis. (The exception is raised directly: a real SIGINT would stop a pytest-xdist
    worker, whose main thread is not the test's.)"""
    from detect_cli.compare import loop

    def interrupted_analysis(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "analyse", interrupted_analysis)
    detectors = [_fake(fake_models["rtdetr"]), _fake(fake_models["yolo"])]
    c = run_comparison(
        detectors, image_frames(discover_images([str(images)])), CompareSettings(warmup=0, conf=0.01), total=4
    )
    assert c.interrupted and c.analysis is None and c.inputs == 4 and c.models[0].speed.calls == 20
    assert c.cut_short == (WHOLE_ANALYSIS,)  # said where the report says what a stop left out
    said = (
        f"stopped after every image was compared: left out {WHOLE_ANALYSIS} (every figure shown is complete)"
    )
    assert c.interruption() == said
    assert json.loads(json.dumps(c.to_dict()))["analysis"] is None


def test_the_analysis_covers_the_run(fake_models: dict[str, Path], images: Path) -> None:
    detectors = [_fake(fake_models["rtdetr"]), _fake(fake_models["yolo"])]
    c = run_comparison(
        detectors, image_frames(discover_images([str(images)])), CompareSettings(warmup=0, conf=0.01), total=4
    )
    a = c.analysis
    assert a is not None and a.pictures == 4 and not a.labelled
    [p] = a.pairs
    assert p.speed_ratio.method.endswith("calls independently") and p.speed_ratio.pictures == 20
    assert p.agreement.estimate == pytest.approx(c.pairs[0].overall.agreement)
    assert [m.boxes.boxes for m in a.models] == [m.detections for m in c.models]
    assert a.models[0].latency_p50.estimate == pytest.approx(c.models[0].speed.latency_p50_ms)


# --- outputs: names, and a folder reused ------------------------------------------------------------------


def _fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from fakes import install

    files = install(monkeypatch, tmp_path / "weights")
    return [files["rtdetr"], files["yolo"]]


def test_inputs_that_would_share_a_side_by_side_picture_get_one_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x.jpg beside x.png, y.jpg beside Y.JPG: one side-by-side picture per input (each of its own
    input's size), every one in the report's gallery."""
    sizes = {"x.jpg": (64, 80), "x.png": (72, 96), "y.jpg": (80, 64), "Y.JPG": (96, 72)}
    for i, (name, size) in enumerate(sizes.items()):
        make_image(tmp_path / "in" / name, i, size=size)
    run = run_compare(_job(tmp_path, _fakes(tmp_path, monkeypatch), tmp_path / "in"))
    side = {p.relative_to(run.out).as_posix(): cv2.imread(str(p)).shape for p in run.out.rglob("*.jpg")}
    assert len(side) == 4 and len({k.casefold() for k in side}) == 4
    widths = sorted(shape[1] for shape in side.values())
    assert widths == sorted(2 * w for _, w in sizes.values())
    md = (run.out / "report.md").read_text()
    assert all(f"({name})" in md for name in side), md


def test_exist_ok_replaces_an_earlier_comparison_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comparison of three pictures, then one of a single picture with another pair into the same
    folder: refused without --exist-ok; with it, the folder holds only the second comparison's
    detections, pictures and report, and the files compare did not write are still there."""
    from detect_cli.errors import OutputError

    weights = _fakes(tmp_path, monkeypatch)
    for i, name in enumerate(["a.jpg", "b.jpg", "c.png"]):
        make_image(tmp_path / "in" / name, i)
    first = run_compare(_job(tmp_path, weights, tmp_path / "in"))
    out = first.out
    assert len(list((out / "side-by-side").rglob("*.jpg"))) == 3
    strangers = {out / "side-by-side" / "in" / "mine.jpg": b"user's", out / "notes.txt": b"user's notes"}
    for path, data in strangers.items():
        path.write_bytes(data)
    again = _job(tmp_path, [weights[0], weights[0]], tmp_path / "in" / "a.jpg")
    with pytest.raises(OutputError, match="holds an earlier comparison's outputs"):
        run_compare(again)
    second = run_compare(replace(again, exist_ok=True))
    assert sorted(p.name for p in (out / "detections").iterdir()) == [
        "rtdetr-l-seed0-2.jsonl",
        "rtdetr-l-seed0.jsonl",
    ]
    for path in (out / "detections").iterdir():
        assert [r["source"] for r in read_jsonl(path)] == [str(tmp_path / "in" / "a.jpg")]
    pictures = sorted(p.relative_to(out).as_posix() for p in (out / "side-by-side").rglob("*.jpg"))
    assert pictures == ["side-by-side/a.jpg", "side-by-side/in/mine.jpg"]
    assert all(path.read_bytes() == data for path, data in strangers.items())
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"] == 1 and second.comparison.inputs == 1
    assert "b.jpg" not in (out / "report.md").read_text()


def test_a_comparison_killed_with_sigkill_is_refused_then_replaced(tmp_path: Path) -> None:
    """SIGKILL mid-run (no handler runs: no report, records and pictures as they were): a rerun into the
    folder is refused without --exist-ok; with it, the detections hold this run's records only."""
    import os
    import signal
    import subprocess
    import time

    from conftest import fake_cli_argv, fake_cli_env
    from fakes import write_fake_weights

    weights = write_fake_weights(tmp_path / "weights")
    for i in range(6):
        make_image(tmp_path / "in" / f"{i}.jpg", i)
    out = tmp_path / "out"
    argv = ["compare", tmp_path / "in", "-m", f"{weights['rtdetr']},{weights['yolo']}", "--imgsz", "64"]
    argv += ["--device", "cpu", "--no-memory", "-o", out, "-q"]
    proc = subprocess.Popen(fake_cli_argv(*argv), env=fake_cli_env(0.3), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    record = out / "detections" / "yolo11n-seed0.jsonl"
    while not (record.exists() and record.read_text().count("\n") >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not (out / "report.json").exists()
    env = fake_cli_env()
    refused = subprocess.run(fake_cli_argv(*argv), env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert [line for line in refused.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {out} holds an earlier comparison's outputs (complete or stopped); pass --exist-ok to "
        "replace them, or choose another --out"
    ]
    redone = subprocess.run(
        fake_cli_argv(*argv, "--exist-ok"), env=env, capture_output=True, text=True, timeout=120
    )
    assert redone.returncode == 0, redone.stderr
    for path in (out / "detections").iterdir():
        sources = [r["source"] for r in read_jsonl(path)]
        assert sorted(sources) == sorted(str(tmp_path / "in" / f"{i}.jpg") for i in range(6)), path
    assert os.path.exists(out / "report.json")


@pytest.mark.parametrize("where", ["picture", "detections"])
def test_a_full_disk_ends_a_comparison_in_one_designed_error(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC injected at the write of a side-by-side picture, or of a model's detections: an OutputError
    (one `error:` line, exit 2) naming the file and the full disk, not an unexpected OSError; compare has
    no --resume, so none is offered."""
    import errno
    import os

    from detect_cli.compare import outputs
    from detect_cli.errors import OutputError
    from detect_cli.writers import JsonlWriter

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "picture":
        monkeypatch.setattr(outputs, "atomic_write_bytes", full)
    else:
        monkeypatch.setattr(JsonlWriter, "_flush", full)
    make_image(tmp_path / "in" / "a.jpg")
    with pytest.raises(OutputError, match="No space left on device") as e:
        run_compare(_job(tmp_path, _fakes(tmp_path, monkeypatch), tmp_path / "in"))
    assert "\n" not in str(e.value) and "--resume" not in str(e.value)
    assert str(tmp_path / "out") in str(e.value)


# --- the progress protocol, and a stop while analysing -----------------------------------------------


class _Recorder:
    """A progress display that keeps what it was told, in order (loop.PhasedProgress)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start(self, total: int | None) -> None:
        self.events.append(("start", total))

    def phase(self, text: str | None) -> None:
        self.events.append(("phase", text))

    def advance(self, result: object) -> None:
        self.events.append(("advance", None))

    def stop(self) -> None:
        self.events.append(("stop", None))


@pytest.mark.parametrize("warmup", [0, 2])
def test_the_warm_up_is_said_as_a_phase_before_the_first_timed_picture(
    fake_models: dict[str, Path], images: Path, warmup: int
) -> None:
    """Each model's warm-up is told to the display before it runs, and its end before the first picture
    advances the bar, so the bar's clock and rate count only timed pictures; no warm-up, no phase."""
    detectors = [_fake(fake_models["rtdetr"]), _fake(fake_models["yolo"])]
    calls_before: list[int] = []
    progress = _Recorder()
    phase = progress.phase

    def spy(text: str | None) -> None:  # how many predictions each model had made when told
        calls_before.append(sum(d.calls for d in detectors))
        phase(text)

    progress.phase = spy  # type: ignore[method-assign]
    frames = image_frames(discover_images([str(images)]))
    run_comparison(detectors, frames, CompareSettings(warmup=warmup, runs=5), progress=progress, total=4)
    warm = [("phase", "warming up rtdetr-l-seed0"), ("phase", "warming up yolo11n-seed0"), ("phase", None)]
    expected = [("start", 4), *(warm if warmup else []), *[("advance", None)] * 4, ("stop", None)]
    assert progress.events == expected
    assert calls_before == ([0, warmup, 2 * warmup] if warmup else [])  # said before each one's runs


class _StopAfter:
    """A stop flag that reads as set from its `k`th look on (the step boundaries of `analyse`)."""

    def __init__(self, k: int) -> None:
        self.k, self.looks = k, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.k


def test_a_stop_while_analysing_leaves_out_the_steps_not_begun_and_says_which(
    fake_models: dict[str, Path], images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop read as set after two steps (the tables, the first model): the first model's figures are
    those of the full analysis (its timings aside: a second run), the rest is absent and named in
    `cut_short`, and the comparison is interrupted, with every input compared."""
    from detect_cli.compare import analysis, loop

    detectors = [_fake(fake_models["rtdetr"]), _fake(fake_models["yolo"])]
    settings = CompareSettings(warmup=0, conf=0.01)
    full = run_comparison(detectors, image_frames(discover_images([str(images)])), settings, total=4)
    real = analysis.analyse
    monkeypatch.setattr(loop, "analyse", lambda e, **kw: real(e, **{**kw, "stop": _StopAfter(2)}))
    c = run_comparison(detectors, image_frames(discover_images([str(images)])), settings, total=4)
    assert full.analysis is not None and not full.interrupted and not full.cut_short
    a = c.analysis
    assert a is not None and c.interrupted and c.inputs == 4
    [m], [whole, _] = a.models, full.analysis.models  # the same figures, but for the timings
    assert (m.model, m.boxes, m.scores) == (whole.model, whole.boxes, whole.scores) and m.latency_p50.low
    assert a.pairs == () and a.equal_precision is None
    assert a.cut_short == (
        "the latency interval, boxes per picture and score profile of yolo11n-seed0",
        "the intervals of rtdetr-l-seed0 vs yolo11n-seed0",
    )
    assert c.cut_short == a.cut_short
    assert json.loads(json.dumps(c.to_dict()))["analysis"]["cut_short"] == list(a.cut_short)
    assert c.interruption() == (
        "stopped after every image was compared: left out " + "; ".join(a.cut_short)
        + " (every figure shown is complete)"
    )  # fmt: skip


def test_every_record_names_the_weights_that_made_it(fake_models: dict[str, Path], tmp_path: Path) -> None:
    """Each model's records, failed ones too (a file that is no picture), carry its weights' digest; the
    ones it made say what ran it (backend, precision)."""
    import hashlib

    folder = tmp_path / "in"
    make_image(folder / "a.jpg")
    (folder / "b.jpg").write_text("not a picture")
    weights = [fake_models["rtdetr"], fake_models["shapes"]]
    run = run_compare(_job(tmp_path, weights, folder))
    assert run.comparison.failed  # the broken file is recorded as failed, by both models
    for w in weights:
        rows = read_jsonl(run.out / "detections" / f"{w.stem}.jsonl")
        assert sorted(r["error"] is None for r in rows) == [False, True]
        assert {r["weights_sha256"] for r in rows} == {hashlib.sha256(w.read_bytes()).hexdigest()}
        # what ran the model, on the records it made, as `detect image` says it
        [ok] = [r for r in rows if r["error"] is None]
        info = next(m.info for m in run.comparison.models if m.info.name == w.stem)
        assert (ok["backend"], ok["precision"]) == (info.backend, info.precision)
