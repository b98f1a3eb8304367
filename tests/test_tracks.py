"""`detect video --track` on generated videos whose motion is known (tests/motion.py), detected by a
fake that finds the shapes by their colour (tests/fakes.py ShapeDetector): the tracks, their lengths,
fragments and flicker are what the motion implies; tracks.csv, MOT files, records and the video agree,
also when the run is stopped; a reconnected stream starts new identities."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import MjpegCamera, QuietServer, fake_cli_argv, fake_cli_env, read_video
from fakes import ShapeDetector
from motion import (
    BLINKS,
    CROSSING,
    HIDES,
    LEAVES_AND_RETURNS,
    TWO_LINES,
    Mover,
    draw,
    line,
    make_motion_video,
)
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.models import PredictOptions, resolve
from detect_cli.render import class_color, draw_detections
from detect_cli.results import Detection, ImageResult
from detect_cli.tracking import RECONNECTED, RunTracker, tracker_config
from detect_cli.tracks import TrackBook
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl

runner = CliRunner()


@pytest.fixture
def track_video(fake_models: dict[str, Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    """`detect video CLIP --track ...` in-process, on the colour-finding fake detector."""

    def go(clip: Path, *args: str, out: Path | None = None, yolo: bool = False):  # type: ignore[no-untyped-def]
        out = out or tmp_path / "out"
        command = ["yolo", "video"] if yolo else ["video"]
        argv = [*command, str(clip), "-m", str(fake_models["shapes"]), "--device", "cpu", "-o", str(out)]
        return runner.invoke(app, [*argv, *args]), out

    return go


def _tracks(out: Path) -> list[dict[str, str]]:
    with (out / "tracks.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _ids_by_frame(out: Path) -> list[list[int | None]]:
    return [[d["track_id"] for d in r["detections"]] for r in read_jsonl(out / "frames.jsonl")]


def test_two_objects_on_straight_lines_are_two_tracks_of_every_frame(track_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=24)
    result, out = track_video(clip, "--track", "-f", "mot")
    assert result.exit_code == 0, result.output
    assert _ids_by_frame(out) == [[1, 2]] * 24
    rows = _tracks(out)
    assert [
        (r["track_id"], r["class_name"], r["first_frame"], r["last_frame"], r["frames_seen"]) for r in rows
    ] == [
        ("1", "person", "0", "23", "24"),
        ("2", "car", "0", "23", "24"),
    ]
    assert rows[0]["first_time_s"] == "0.0000" and rows[0]["last_time_s"] == "2.3000"
    assert rows[0]["mean_confidence"] == "0.900000"
    mot = (out / "mot" / "lines.txt").read_text().splitlines()
    assert len(mot) == 48
    assert mot[0] == "1,1,4.00,10.00,20.00,20.00,0.900000,-1,-1,-1"  # 1-based frame, x y w h
    assert mot[-1].startswith("24,2,") and mot[-1].endswith(",-1,-1,-1")
    assert read_video(out / f"lines{pick_codec().suffix}")[0] == 24
    assert "2 tracks (bytetrack)" in result.stderr


@pytest.mark.parametrize("tracker", ["bytetrack", "botsort"])
def test_crossing_objects_keep_their_identities(track_video, tmp_path: Path, tracker: str) -> None:  # type: ignore[no-untyped-def]
    clip = make_motion_video(tmp_path / "cross.avi", CROSSING, frames=18)
    result, out = track_video(clip, "--track", "--tracker", tracker)
    assert result.exit_code == 0, result.output
    classes_by_id: dict[int, set[str]] = {}
    for record in read_jsonl(out / "frames.jsonl"):
        for d in record["detections"]:
            classes_by_id.setdefault(d["track_id"], set()).add(d["class_name"])
    assert classes_by_id == {1: {"person"}, 2: {"car"}}  # no swap where their paths cross
    assert [r["frames_seen"] for r in _tracks(out)] == ["18", "18"]


def test_an_object_that_leaves_and_comes_back_is_a_new_track(track_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = make_motion_video(tmp_path / "leave.avi", LEAVES_AND_RETURNS, frames=46)
    result, out = track_video(clip, "--track", "--tracker", "bytetrack", yolo=True)
    assert result.exit_code == 0, result.output
    rows = [(r["track_id"], r["first_frame"], r["last_frame"], r["frames_seen"]) for r in _tracks(out)]
    # Gone for frames 19-30; back at frame 31, confirmed (and numbered) on its second frame, as
    # ByteTrack confirms every track that starts after the first frame.
    assert rows == [("1", "0", "18", "19"), ("2", "32", "45", "14")]
    ids = _ids_by_frame(out)
    assert ids[19:31] == [[]] * 12 and ids[31] == [None] and ids[32] == [2]


def _book(clip: Path, movers_frames: int, tracker: str = "bytetrack", fps: float = 10.0) -> TrackBook:
    """The engine on its own: decoded frames → the colour fake → RunTracker → TrackBook."""
    detector = ShapeDetector(resolve("yolo11n.yaml", "yolo"), PredictOptions())
    run, book = RunTracker(tracker_config(tracker)), TrackBook()
    cap = cv2.VideoCapture(str(clip))
    for i in range(movers_frames):
        ok, image = cap.read()
        assert ok
        dets = detector.find(image)
        book.add(run.assign(ImageResult(str(clip), "shapes", 128, 96, detections=dets, frame=i), image))
    cap.release()
    return book


def test_a_two_frame_miss_is_flicker_not_a_new_track(tmp_path: Path) -> None:
    clip = make_motion_video(tmp_path / "blink.avi", BLINKS, frames=20)
    figures = _book(clip, 20).stability({str(clip): 10.0})
    assert (figures.tracks, figures.fragments, figures.median_length) == (1, 0, 18.0)
    assert figures.flicker == pytest.approx(2 / 20)  # missed 2 of the 20 frames of its life
    assert figures.minutes == pytest.approx(20 / 10 / 60) and figures.tracks_per_minute == pytest.approx(30.0)


def test_a_track_lost_and_restarted_at_the_same_place_is_a_fragment(tmp_path: Path) -> None:
    clip = make_motion_video(tmp_path / "hide.avi", HIDES, frames=20)
    # ByteTrack's default keeps the lost track for 30 frames: one track, and a 3-frame miss is no flicker.
    figures = _book(clip, 20).stability({str(clip): 10.0})
    assert (figures.tracks, figures.fragments, figures.flicker) == (1, 0, 0.0)
    settings = tmp_path / "short.yaml"
    settings.write_text("tracker_type: bytetrack\ntrack_buffer: 1\n")  # a lost track is dropped at once
    book = _book(clip, 20, str(settings))
    spans = [(t.track_id, t.first_frame, t.last_frame) for t in book.tracks.values()]
    assert spans == [(1, 0, 9), (2, 14, 19)]  # back at frame 13, confirmed at 14
    figures = book.stability({str(clip): 10.0})
    assert (figures.tracks, figures.fragments, figures.flicker) == (2, 1, 0.0)
    assert (figures.median_length, figures.p10_length) == (8.0, pytest.approx(6.4))


def test_leaving_and_returning_far_later_is_no_fragment(tmp_path: Path) -> None:
    clip = make_motion_video(tmp_path / "leave.avi", LEAVES_AND_RETURNS, frames=46)
    figures = _book(clip, 46).stability({str(clip): 10.0})
    assert (figures.tracks, figures.fragments) == (2, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "mot"], "-f mot writes tracks: add --track"),
        (["--tracker", "botsort"], "--tracker chooses the tracker of --track: add --track"),
        (["--track", "--tracker", "sort"], "--tracker sort: use bytetrack, botsort, or a .yaml"),
    ],
)
def test_tracking_options_that_cannot_work_are_refused_in_one_line(
    track_video, tmp_path: Path, args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=3)
    result, out = track_video(clip, *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}" or result.stderr.strip().startswith(
        f"error: {message}"
    )
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_image_has_no_track_and_refuses_mot(fake_models: dict[str, Path], tmp_path: Path) -> None:
    picture = tmp_path / "a.png"
    cv2.imwrite(str(picture), draw(0, TWO_LINES))
    base = ["image", str(picture), "-m", str(fake_models["shapes"]), "-o", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--track"])
    assert result.exit_code == 2 and "No such option: --track" in result.output
    result = runner.invoke(app, [*base, "-f", "mot"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: -f mot writes tracks of a video: use detect video --track -f mot"


def test_sigterm_finalizes_tracks_csv_mot_and_video_with_the_same_frames(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    clip = make_motion_video(tmp_path / "long.avi", TWO_LINES, frames=24)
    out = tmp_path / "out"
    argv = fake_cli_argv("video", clip, "-m", fake_models["shapes"], "--track", "-f", "mot", "-o", out)
    proc = subprocess.Popen(argv, env=fake_cli_env(delay=0.3), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frames = out / "frames.jsonl"
        if frames.exists() and len(frames.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    records = read_jsonl(out / "frames.jsonl")
    assert 3 <= len(records) < 24
    held = sum(d["track_id"] is not None for r in records for d in r["detections"])
    assert held == 2 * len(records)
    assert sum(int(r["frames_seen"]) for r in _tracks(out)) == held
    assert max(int(r["last_frame"]) for r in _tracks(out)) == records[-1]["frame"]
    assert len((out / "mot" / "long.txt").read_text().splitlines()) == held
    assert read_video(out / f"long{pick_codec().suffix}")[0] == len(records)
    assert not list(out.rglob("*.part*"))


class _ShapeStream(MjpegCamera):
    """A red square moving right: the probe, the first read and one reconnect each get frames, then the
    camera is gone (503)."""

    LIVE, FRAMES = 3, 6

    def frame(self, i: int) -> np.ndarray:
        return draw(i, [Mover(0, 20, line(10, 30, 3, 0))])


@pytest.fixture
def shape_stream() -> Iterator[str]:
    handler = type("Handler", (_ShapeStream,), {"connections": []})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam"
    finally:
        server.shutdown()
        server.server_close()


def test_a_reconnected_stream_starts_new_identities_and_says_so(track_video, shape_stream: str) -> None:  # type: ignore[no-untyped-def]
    result, out = track_video(shape_stream, "--track", "--reconnects", "1", "--url-timeout", "5")  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    records = read_jsonl(out / "frames.jsonl")
    assert len(records) == 2 * _ShapeStream.FRAMES
    restarts = [i for i, r in enumerate(records) if "tracks_restart" in r]
    assert restarts == [_ShapeStream.FRAMES] and records[6]["tracks_restart"] == RECONNECTED
    ids = [d["track_id"] for r in records for d in r["detections"]]
    assert ids == [1] * 6 + [2] * 6  # the same square, a new identity after the reconnect
    assert [r["track_id"] for r in _tracks(out)] == ["1", "2"]


def test_track_ids_and_trails_are_drawn_in_the_track_colour() -> None:
    image = np.zeros((96, 128, 3), np.uint8)
    det = Detection(0, "person", 0.9, (60.0, 40.0, 80.0, 60.0))
    drawn = draw_detections(image, [det], track_ids=[7], trails=[(7, [(10, 80), (50, 80)])])
    colour = class_color(7)
    on_trail = {tuple(int(v) for v in px) for px in drawn[78:83, 30]}  # across the line, between its points
    assert colour in on_trail
    assert tuple(int(v) for v in drawn[50, 60]) == colour  # the box's left edge
    assert tuple(int(v) for v in drawn[80, 100]) == (0, 0, 0)  # nothing past the trail's end
    assert colour != class_color(0)  # coloured by track, not by class


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_results_csv_gives_each_box_its_track_id_and_untracked_runs_keep_their_columns(
    track_video, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """results.csv had no track id: its rows could not be joined across frames. A tracked run's rows
    now end with the box's track id (empty where no track holds it: frame 31's box, confirmed only
    on its next frame; and the frames without a box); an untracked run's columns are as they were."""
    from detect_cli.writers.tables import CSV_COLUMNS

    clip = make_motion_video(tmp_path / "leave.avi", LEAVES_AND_RETURNS, frames=46)
    result, out = track_video(clip, "--track", "-f", "csv")
    assert result.exit_code == 0, result.output
    header, rows = _csv_rows(out / "results.csv")
    assert header == ["source", "frame", "time_s", *CSV_COLUMNS[1:], "track_id"]
    by_frame: dict[int, list[str]] = {}
    for row in rows:
        by_frame.setdefault(int(row["frame"]), []).append(row["track_id"])
    recorded = [["" if t is None else str(t) for t in ids] or [""] for ids in _ids_by_frame(out)]
    assert [by_frame[i] for i in range(46)] == recorded  # the record's ids, box by box
    assert by_frame[0] == ["1"] and by_frame[20] == [""] and by_frame[31] == [""] and by_frame[32] == ["2"]
    assert rows[20]["class_name"] == "" and rows[31]["class_name"] == "person"  # no box; a box, no track

    result, plain = track_video(clip, "-f", "csv", out=tmp_path / "plain")
    assert result.exit_code == 0, result.output
    header, rows = _csv_rows(plain / "results.csv")
    assert header == ["source", "frame", "time_s", *CSV_COLUMNS[1:]] and len(rows) == 46


def _spy_labels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every box label drawn from now on, in order, through the real drawing (render.box_label)."""
    from detect_cli import render

    labels: list[str] = []
    real = render.box_label

    def spy(image: np.ndarray, box, label: str, color, lw: int) -> None:  # type: ignore[no-untyped-def]
        labels.append(label)
        real(image, box, label, color, lw)

    monkeypatch.setattr(render, "box_label", spy)
    return labels


def _labels(records: list[dict]) -> list[str]:  # type: ignore[type-arg]
    """The labels ultralytics draws for the recorded boxes: `#id class conf` for a box a track holds."""
    return [
        ("" if d.get("track_id") is None else f"#{d['track_id']} ")
        + f"{d['class_name']} {d['confidence']:.2f}"
        for r in records
        for d in r["detections"]
    ]


def test_saved_frames_show_the_track_ids_the_video_shows(
    track_video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """--save-frames pictures were drawn without the ids the annotated video shows: each frame's
    boxes are now labelled `#id class conf` in their track's colour, by the one drawing function."""
    clip = make_motion_video(tmp_path / "leave.avi", LEAVES_AND_RETURNS, frames=34)
    labels = _spy_labels(monkeypatch)
    result, out = track_video(clip, "--track", "--no-save", "--save-frames")  # frames only: no video
    assert result.exit_code == 0, result.output
    records = read_jsonl(out / "frames.jsonl")
    assert labels == _labels(records)
    assert labels[0] == "#1 person 0.90"
    assert labels[-3:] == ["person 0.90", "#2 person 0.90", "#2 person 0.90"]  # confirmed on its 2nd frame
    saved = cv2.imread(str(out / "leave" / "000000.jpg"))
    x1, y1, x2, _ = (int(v) for v in records[0]["detections"][0]["xyxy"])
    label_band = saved[max(y1 - 8, 0) : y1 - 1, x1 + 1 : min(x2, x1 + 30)].reshape(-1, 3).astype(int)
    track_colour, class_colour = np.array(class_color(1)), np.array(class_color(0))
    # The label's background, in the track's colour (ids 1 and class 0 have different ones).
    assert np.median(np.abs(label_band - track_colour).sum(axis=1)) < 60
    assert np.median(np.abs(label_band - class_colour).sum(axis=1)) > 200


def test_compare_side_by_side_shows_each_models_track_ids(
    fake_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compare --track drew its side-by-side frames without ids: each model's panel now shows its own
    tracks' ids, as the tracked results (also in detections/<model>.jsonl) give them."""
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=6)
    labels = _spy_labels(monkeypatch)
    models = f"{fake_models['shapes']},{fake_models['rtdetr']}"
    argv = ["compare", str(clip), "-m", models, "--device", "cpu", "--no-memory", "--warmup", "0"]
    result = runner.invoke(app, [*argv, "--conf", "0.05", "-o", str(tmp_path / "out"), "--track"])
    assert result.exit_code == 0, result.output
    detections = tmp_path / "out" / "detections"
    shapes, fixed = (read_jsonl(detections / f"{Path(m).stem}.jsonl") for m in models.split(","))
    assert labels == [x for a, b in zip(shapes, fixed, strict=True) for x in _labels([a]) + _labels([b])]
    assert labels[:2] == ["#1 person 0.90", "#2 car 0.90"]  # the shapes model's panel, frame 0
    assert any(label.startswith("#1 ") for label in _labels(fixed))  # the other model's own track
    assert (tmp_path / "out" / "side-by-side" / f"lines{pick_codec().suffix}").is_file()
