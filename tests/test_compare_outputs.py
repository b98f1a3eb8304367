"""What compare writes as the run goes: per-model detections, side-by-side pictures and videos."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from conftest import read_video

from detect_cli.compare.outputs import CompareOutputs
from detect_cli.pipeline import Frame
from detect_cli.render import title_band_height
from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl


def test_side_by_side_video_keeps_every_frame(tmp_path: Path) -> None:
    """A frame a model failed on stays in the video (its panel says so), so the video keeps the source's
    frames and timing; report.html keeps only the pictures asked for, also written as .jpg."""
    codec = pick_codec()
    outputs = CompareOutputs(tmp_path, ["a", "b"], picture_indexes=[1], video_fps={"v.mp4": 5.0}, codec=codec)
    image = np.zeros((48, 64, 3), np.uint8)
    box = (Detection(0, "x", 0.9, (1.0, 1.0, 20.0, 20.0)),)
    for i in range(3):
        frame = Frame("v.mp4", PurePosixPath("v", f"{i:06d}.jpg"), image, frame=i, time_s=i / 5)
        ok = ImageResult("v.mp4", "a", 64, 48, Speed(1, 2, 3), box, frame=i, time_s=i / 5)
        failed = ImageResult("v.mp4", "b", 64, 48, error="inference failed: boom", frame=i, time_s=i / 5)
        outputs(frame, [ok, failed if i == 1 else ok])
    outputs.close()
    assert outputs.videos == [tmp_path / "side-by-side" / f"v{codec.suffix}"]
    assert read_video(outputs.videos[0]) == (3, 2 * 64, title_band_height(64) + 48, 5.0)
    assert [p.source for p in outputs.pictures] == ["v.mp4, frame 1"]
    assert [p.name for p in (tmp_path / "side-by-side" / "v").iterdir()] == ["000001.jpg"]
    rows = read_jsonl(tmp_path / "detections" / "b.jsonl")
    assert [r["frame"] for r in rows] == [0, 1, 2] and rows[1]["error"] == "inference failed: boom"


def test_only_listed_files_inside_the_folder_are_removed(tmp_path: Path) -> None:
    """The list of a comparison's files is read from disk: an entry leading out of the folder (`..`, an
    absolute path, a symlinked folder) removes nothing; listed files do go, with the folders they empty."""
    import json

    from detect_cli.compare.outputs import FILE_LIST, remove_listed

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "side-by-side" / "in").mkdir(parents=True)
    elsewhere.mkdir()
    victim = elsewhere / "x.jpg"
    victim.write_bytes(b"user's")
    (out / "linked").symlink_to(elsewhere)
    (out / "side-by-side" / "in" / "a.jpg").write_bytes(b"picture")
    (out / "report.json").write_text("{}")
    entries = [
        "side-by-side/in/a.jpg",
        "report.json",
        "../elsewhere/x.jpg",
        str(victim),
        "linked/x.jpg",
        "gone.jpg",
    ]
    (out / FILE_LIST).write_text("".join(json.dumps(e) + "\n" for e in entries) + "not json\n")
    assert remove_listed(out) == 2
    assert victim.read_bytes() == b"user's" and (out / "linked").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["linked"]
