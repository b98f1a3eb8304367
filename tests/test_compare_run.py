"""`detect compare` end to end without Typer: what the sources are, and a video compared frame by frame."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import pytest
from conftest import SMALL_IMGSZ, make_image, make_video, read_video, truncate
from test_compare_report import external_refs

from detect_cli.compare.results import CompareSettings
from detect_cli.compare.run import CompareJob, run_compare, run_comparison, source_kind, spread
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
    assert page.count("data:image/jpeg;base64,") == 4 + poster
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
    """A real SIGINT during the analysis (the loop's handlers are gone by then, so Python raises
    KeyboardInterrupt): the comparison comes back, measured, marked interrupted, without an analysis."""
    import os
    import signal

    from detect_cli.compare import run

    def interrupted_analysis(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal arrives first
        raise AssertionError("SIGINT was not delivered")

    monkeypatch.setattr(run, "analyse", interrupted_analysis)
    detectors = [_fake(fake_models["rtdetr"]), _fake(fake_models["yolo"])]
    c = run_comparison(
        detectors, image_frames(discover_images([str(images)])), CompareSettings(warmup=0, conf=0.01), total=4
    )
    assert c.interrupted and c.analysis is None and c.inputs == 4 and c.models[0].speed.calls == 20
    assert "stopped while analysing" in c.notes[-1]
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
