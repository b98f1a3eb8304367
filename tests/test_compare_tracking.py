"""compare/tracking.py: MOTA, IDF1 and HOTA from TrackEval, checked on TrackEval's own example; and
`detect compare VIDEO --track [--mot-gt]` end to end on a generated video with known motion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trackeval
from motion import LEAVES_AND_RETURNS, TWO_LINES, make_motion_video
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.compare.tracking import mot_metrics, read_mot
from detect_cli.errors import BadOptionError

runner = CliRunner()


def _dense(gt_present, tracker_present, similarity):  # type: ignore[no-untyped-def]
    """TrackEval's tests/test_metrics.py `_from_dense`: its examples as the data its metrics take."""
    steps = len(gt_present)
    gt_ids = [np.flatnonzero(gt_present[t]) for t in range(steps)]
    tracker_ids = [np.flatnonzero(tracker_present[t]) for t in range(steps)]
    return {
        "num_timesteps": steps,
        "num_gt_ids": gt_present.shape[1],
        "num_tracker_ids": tracker_present.shape[1],
        "num_gt_dets": int(gt_present.sum()),
        "num_tracker_dets": int(tracker_present.sum()),
        "gt_ids": gt_ids,
        "tracker_ids": tracker_ids,
        "similarity_scores": [similarity[t][gt_ids[t], :][:, tracker_ids[t]] for t in range(steps)],
    }


def _split_tracks():  # type: ignore[no-untyped-def]
    """TrackEval's `split_tracks` example (tests/test_metrics.py) and the figures it expects."""
    similarity = np.zeros([5, 2, 5])
    similarity[:, 0, 0] = [1, 1, 0, 0, 0]
    similarity[:, 0, 3] = [0, 0, 0, 1, 1]
    similarity[:, 1, 1] = [0, 0, 1, 1, 0]
    similarity[:, 1, 2] = [0, 0, 0, 0, 1]
    similarity[:, 1, 4] = [1, 1, 0, 0, 0]
    gt_present = np.zeros([5, 2])
    gt_present[:, 0] = [1, 1, 0, 1, 1]
    gt_present[:, 1] = [1, 1, 1, 1, 1]
    tracker_present = np.zeros([5, 5])
    tracker_present[:, 0] = [1, 1, 0, 0, 0]
    tracker_present[:, 1] = [0, 0, 1, 1, 1]
    tracker_present[:, 2] = [0, 0, 0, 0, 1]
    tracker_present[:, 3] = [0, 0, 1, 1, 1]
    tracker_present[:, 4] = [1, 1, 0, 0, 0]
    expected = {"MOTA": 1 - 5 / 9, "IDSW": 3, "IDF1": 2 * 4 / 20}
    return gt_present, tracker_present, similarity, expected


def _with_confusion():  # type: ignore[no-untyped-def]
    """TrackEval's `with_confusion` example."""
    similarity = np.zeros([5, 2, 2])
    similarity[:, 0, 1] = [0, 0, 0, 1, 1]
    similarity[:, 1, 0] = [1, 1, 0, 0, 0]
    similarity[:, 0, 0] = [0, 0, 1, 0, 0]
    similarity[:, 1, 1] = [0, 1, 0, 0, 0]
    gt_present = np.zeros([5, 2])
    gt_present[:, 0] = [1, 1, 1, 1, 1]
    gt_present[:, 1] = [1, 1, 1, 0, 0]
    tracker_present = np.zeros([5, 2])
    tracker_present[:, 0] = [1, 1, 1, 1, 0]
    tracker_present[:, 1] = [1, 1, 1, 1, 1]
    expected = {"MOTA": 1 - 8 / 8, "IDSW": 1, "IDF1": 2 * 4 / 17}
    return gt_present, tracker_present, similarity, expected


def _as_mot_files(tmp_path: Path, gt_present, tracker_present, similarity) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The example as MOTChallenge files: a tracker box that the example says matches a ground-truth
    box (similarity 1) is that box; any other box is far from every ground-truth box (similarity 0)."""
    gt_lines, tracker_lines = [], []
    for t in range(len(gt_present)):
        for g in np.flatnonzero(gt_present[t]):
            gt_lines.append(f"{t + 1},{g + 1},{100 * g},0,50,50,1,1,1")
        for k in np.flatnonzero(tracker_present[t]):
            hit = [g for g in np.flatnonzero(gt_present[t]) if similarity[t, g, k] == 1]
            x, y = (100 * hit[0], 0) if hit else (1000 + 100 * k, 500)
            tracker_lines.append(f"{t + 1},{k + 7},{x},{y},50,50,0.9,-1,-1,-1")
    gt, tracks = tmp_path / "gt.txt", tmp_path / "tracks.txt"
    gt.write_text("\n".join(gt_lines) + "\n")
    tracks.write_text("\n".join(tracker_lines) + "\n")
    return gt, tracks


@pytest.mark.parametrize("example", [_split_tracks, _with_confusion])
def test_scores_are_trackevals_own_on_its_own_example(tmp_path: Path, example) -> None:  # type: ignore[no-untyped-def]
    gt_present, tracker_present, similarity, expected = example()
    gt, tracks = _as_mot_files(tmp_path, gt_present, tracker_present, similarity)
    scores = mot_metrics(read_mot(gt, ground_truth=True), read_mot(tracks), range(1, 6))
    assert scores.mota == pytest.approx(expected["MOTA"])
    assert scores.id_switches == expected["IDSW"]
    assert scores.idf1 == pytest.approx(expected["IDF1"])
    hota = trackeval.metrics.HOTA({"PRINT_CONFIG": False}).eval_sequence(
        _dense(gt_present, tracker_present, similarity)
    )
    assert scores.hota == pytest.approx(float(np.mean(hota["HOTA"])))
    assert scores.gt_boxes == int(gt_present.sum()) and scores.gt_ids == 2


def test_ground_truth_rows_marked_not_to_consider_are_left_out_and_bad_files_refused(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,0,0,10,10,1,1,1\n1,2,50,50,10,10,0,8,1\n")
    table = read_mot(gt, ground_truth=True)
    assert table.ids == 1 and len(table.frames[1][0]) == 1
    gt.write_text("frame,id,x\n")
    with pytest.raises(BadOptionError, match="line 1 is not MOTChallenge"):
        read_mot(gt, ground_truth=True)


def _truth(path: Path, movers, frames: int) -> Path:  # type: ignore[no-untyped-def]
    """The scene's MOTChallenge ground truth: every square where it is drawn, one id per square."""
    lines = []
    for f in range(frames):
        for i, m in enumerate(movers):
            if (at := m.at(f)) is not None:
                x, y = at
                w = min(m.side, 128 - x)
                lines.append(f"{f + 1},{i + 1},{x},{y},{w},{m.side},1,1,1")
    path.write_text("\n".join(lines) + "\n")
    return path


def _compare(fake_models: dict[str, Path], clip: Path, out: Path, *args: str):  # type: ignore[no-untyped-def]
    models = f"{fake_models['shapes']},{fake_models['rtdetr']}"
    argv = ["compare", str(clip), "-m", models, "--device", "cpu", "--no-memory", "--warmup", "0"]
    return runner.invoke(app, [*argv, "--conf", "0.05", "-o", str(out), *args])


def test_compare_tracks_every_model_and_scores_it_against_ground_truth(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=24)
    gt = _truth(tmp_path / "gt.txt", TWO_LINES, 24)
    result = _compare(fake_models, clip, tmp_path / "out", "--track", "--mot-gt", str(gt))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    tracking = report["tracking"]
    assert tracking["tracker"] == "bytetrack" and tracking["settings"]["track_buffer"] == 30
    shapes, fixed = tracking["models"]
    # The colour fake finds the two squares: two whole tracks, scored as perfect but for the pixels
    # lost to compression (HOTA averages IoU thresholds up to 0.95).
    assert shapes["stability"]["tracks"] == 2 and shapes["stability"]["median_length"] == 24
    assert shapes["stability"]["fragments"] == 0 and shapes["stability"]["flicker"] == 0
    assert shapes["mot"]["mota"] == 1.0 and shapes["mot"]["idf1"] == 1.0 and shapes["mot"]["id_switches"] == 0
    assert shapes["mot"]["hota"] > 0.8 and shapes["mot"]["frames"] == 24
    # The other fake puts its boxes in the same places on every frame, and only one of them scores
    # above ByteTrack's track_high_thresh (0.25): one steady track on no moving square, worse than none.
    assert fixed["stability"]["tracks"] == 1 and fixed["stability"]["median_length"] == 24
    assert fixed["mot"]["mota"] < 0 and fixed["mot"]["idf1"] == 0 and fixed["mot"]["hota"] < 0.1
    mot_file = tmp_path / "out" / shapes["files"][0]
    assert len(mot_file.read_text().splitlines()) == 48
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Tracking" in md and "MOTA" in md and "HOTA" in md


def test_compare_track_without_ground_truth_gives_stability_only(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    clip = make_motion_video(tmp_path / "leave.avi", LEAVES_AND_RETURNS, frames=46)
    result = _compare(fake_models, clip, tmp_path / "out", "--track", "--tracker", "botsort")
    assert result.exit_code == 0, result.output
    shapes = json.loads((tmp_path / "out" / "report.json").read_text())["tracking"]["models"][0]
    assert shapes["mot"] is None
    assert (shapes["stability"]["tracks"], shapes["stability"]["fragments"]) == (2, 0)
    assert shapes["stability"]["tracks_per_minute"] == pytest.approx(2 / (46 / 10 / 60), rel=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mot-gt", "GT"], "--mot-gt scores tracks: add --track"),
        (["--tracker", "botsort"], "--tracker chooses the tracker of --track: add --track"),
    ],
)
def test_tracking_options_that_cannot_work_are_refused(
    fake_models: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=3)
    gt = _truth(tmp_path / "gt.txt", TWO_LINES, 3)
    result = _compare(fake_models, clip, tmp_path / "out", *(str(gt) if a == "GT" else a for a in args))
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}"


def test_track_on_pictures_is_refused(fake_models: dict[str, Path], images: Path, tmp_path: Path) -> None:
    result = _compare(fake_models, images, tmp_path / "out", "--track")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --track follows objects across the frames of a video; the sources are images"
    )


def test_ground_truth_of_other_frames_is_said_and_not_scored(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    clip = make_motion_video(tmp_path / "lines.avi", TWO_LINES, frames=6)
    gt = tmp_path / "gt.txt"
    gt.write_text("500,1,0,0,10,10,1,1,1\n")  # another video's: no box on frames 1-6
    result = _compare(fake_models, clip, tmp_path / "out", "--track", "--mot-gt", str(gt))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert all(m["mot"] is None for m in report["tracking"]["models"])
    assert any("has no box on the frames compared" in n for n in report["notes"])
    assert "has no box on the frames compared" in result.stderr
