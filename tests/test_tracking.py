"""tracking.py: the tracker's settings as ultralytics names them, ids per box, restarts, lap's absence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from detect_cli.errors import BadOptionError
from detect_cli.results import Detection, ImageResult
from detect_cli.tracking import RECONNECTED, RunTracker, TrackedResult, Tracker, tracker_config


def _box(x: float, y: float, side: float = 20, conf: float = 0.9, cls: int = 0) -> Detection:
    return Detection(cls, "person", conf, (x, y, x + side, y + side))


def _frame(i: int, dets: tuple[Detection, ...], source: str = "v.mp4") -> ImageResult:
    return ImageResult(source, "m", 128, 96, detections=dets, frame=i, time_s=i / 10)


IMAGE = np.zeros((96, 128, 3), np.uint8)


@pytest.mark.parametrize(
    ("yaml_text", "expected", "error"),
    [
        ("tracker_type: bytetrack\ntrack_buffer: 5\n", {"track_buffer": 5, "match_thresh": 0.8}, None),
        ("tracker_type: botsort\ngmc_method: none\n", {"gmc_method": "none", "with_reid": False}, None),
        ("tracker_type: sort\n", None, "tracker_type must be one of bytetrack, botsort"),
        ("tracker_type: bytetrack\ntrack_bufer: 5\n", None, "unknown bytetrack setting.*track_bufer"),
        ("tracker_type: bytetrack\ntrack_buffer: many\n", None, "track_buffer must be like 30"),
        ("tracker_type: botsort\nwith_reid: true\n", None, "with_reid needs an appearance"),
        ("- a list\n", None, "holds no settings"),
        ("tracker_type: [\n", None, "is not valid YAML"),
    ],
)
def test_a_settings_yaml_is_read_as_ultralytics_names_them(
    tmp_path: Path, yaml_text: str, expected: dict | None, error: str | None
) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(yaml_text)
    if error:
        with pytest.raises(BadOptionError, match=error):
            tracker_config(str(path))
        return
    config = tracker_config(str(path))
    assert config.origin == str(path)
    for key, value in (expected or {}).items():
        assert config.settings[key] == value


def test_named_trackers_are_ultralytics_defaults_and_others_are_refused(tmp_path: Path) -> None:
    byte = tracker_config("ByteTrack")
    assert byte.kind == "bytetrack" and byte.settings["track_buffer"] == 30
    assert tracker_config("botsort").settings["gmc_method"] == "sparseOptFlow"
    with pytest.raises(BadOptionError, match=r"use bytetrack, botsort, or a \.yaml"):
        tracker_config("deepsort")
    with pytest.raises(BadOptionError, match="no such file"):
        tracker_config(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_each_box_gets_the_id_of_the_track_that_holds_it(kind: str) -> None:
    tracker = Tracker(tracker_config(kind))
    seen = []
    for i in range(6):
        dets = [_box(10 + 4 * i, 10), _box(90 - 4 * i, 60, cls=1), _box(60, 5, side=8, conf=0.15)]
        seen.append(tracker.update(dets, IMAGE))
    assert seen[0] == [1, 2, None]  # on the first frame every confident box starts a track
    assert all(ids == [1, 2, None] for ids in seen)  # the low-score box is never a track of its own
    assert tracker.update([], IMAGE) == []


def test_a_box_first_seen_after_the_first_frame_is_confirmed_on_its_second() -> None:
    tracker = Tracker(tracker_config("bytetrack"))
    assert tracker.update([_box(10, 10)], IMAGE) == [1]
    assert tracker.update([_box(12, 10), _box(80, 60)], IMAGE) == [1, None]
    assert tracker.update([_box(14, 10), _box(80, 60)], IMAGE) == [1, 2]


def test_a_new_source_and_a_reconnect_start_new_identities_that_say_so() -> None:
    run = RunTracker(tracker_config("bytetrack"))
    first = [run.assign(_frame(i, (_box(10 + 2 * i, 10),)), IMAGE) for i in range(3)]
    assert all(isinstance(r, TrackedResult) and r.track_ids == (1,) for r in first)
    run.restart_at("v.mp4", 3)  # as the decoder marks the first frame after a reconnect
    after = [run.assign(_frame(i, (_box(10 + 2 * i, 10),)), IMAGE) for i in range(3, 6)]
    assert after[0].restart == RECONNECTED and after[0].to_dict()["tracks_restart"] == RECONNECTED
    assert "tracks_restart" not in after[1].to_dict()
    # The same object after the reconnect is a new identity, numbered after the ones before it.
    assert [r.track_ids for r in after] == [(2,), (2,), (2,)]
    other = run.assign(_frame(0, (_box(10, 10),), source="w.mp4"), IMAGE)
    assert other.track_ids == (1,)  # each source numbers its own tracks from 1


def test_records_carry_track_ids_and_failed_frames_pass_through() -> None:
    run = RunTracker(tracker_config("bytetrack"))
    record = run.assign(_frame(0, (_box(10, 10), _box(60, 50, conf=0.15))), IMAGE).to_dict()
    assert [d["track_id"] for d in record["detections"]] == [1, None]
    failed = ImageResult("v.mp4", "m", error="video ends early", frame=1)
    assert run.assign(failed, None) is failed


def test_without_lap_track_says_so_instead_of_installing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """ultralytics' matching module pip-installs lap when it is missing; a run must say so instead."""
    monkeypatch.setitem(sys.modules, "lap", None)  # `import lap` now raises ImportError
    with pytest.raises(BadOptionError, match=r"--track needs the lap package \(pip install lap\)"):
        RunTracker(tracker_config("bytetrack"))


def test_the_tracking_modules_import_neither_torch_nor_ultralytics() -> None:
    """An untracked video run (on an export) must stay free of torch: only a tracker, once asked
    for, brings ultralytics (and torch) in."""
    import subprocess

    child = (
        "import sys\n"
        "import detect_cli.jobs.video, detect_cli.tracking, detect_cli.tracks, detect_cli.compare.tracking\n"
        "from detect_cli.tracking import tracker_config\n"
        "tracker_config('botsort')\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'trackeval', 'lap') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
