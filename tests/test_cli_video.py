"""`detect video` and `detect yolo video` as users meet them: outputs read back, faults, exit codes."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ, fake_cli_argv, fake_cli_env, make_image, make_video, read_video, truncate
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl

runner = CliRunner()


@pytest.fixture
def detect_video(fake_models: dict[str, Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `detect [yolo] video ...` in-process (the fake detector: these tests are about the plumbing)."""
    rtdetr_pt, yolo_pt = fake_models["rtdetr"], fake_models["yolo"]

    def go(*args: str, yolo: bool = False, out: Path | None = None):  # type: ignore[no-untyped-def]
        out = out or tmp_path / "out"
        command = ["yolo", "video"] if yolo else ["video"]
        weights = str(yolo_pt if yolo else rtdetr_pt)
        conf = "1e-6" if yolo else "0.01"
        argv = [*command, *args, "-m", weights, "--imgsz", str(SMALL_IMGSZ), "--device", "cpu"]
        argv += ["--conf", conf, "--max-det", "3", "-o", str(out)]
        return runner.invoke(app, argv), out

    return go


def _video_out(out: Path, rel: str) -> Path:
    return out / f"{rel}{pick_codec().suffix}"


def test_video_run_writes_annotated_video_and_frames_jsonl(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = make_video(tmp_path / "clip.mp4", frames=15, fps=10)
    result, out = detect_video(str(clip))
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out / "frames.jsonl")
    assert [r["frame"] for r in rows] == list(range(15))
    assert [r["time_s"] for r in rows] == [round(i / 10, 4) for i in range(15)]
    assert all(r["source"] == str(clip) and r["error"] is None for r in rows)
    assert all(set(r["speed_ms"]) == {"preprocess", "inference", "postprocess"} for r in rows)
    assert all(len(r["detections"]) == 3 and r["model"] == "rtdetr-l-seed0" for r in rows)
    assert set(rows[0]["detections"][0]) == {"class_id", "class_name", "confidence", "xyxy"}
    assert read_video(_video_out(out, "clip")) == (15, 128, 96, 10.0)
    assert "15 frames processed, 0 failed, 45 detections" in result.stderr
    assert f"codec: {pick_codec()}" in result.stderr and str(_video_out(out, "clip")) in result.stderr


def test_vid_stride_and_max_frames(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = make_video(tmp_path / "clip.avi", frames=20, fps=12)
    result, out = detect_video(str(clip), "--vid-stride", "3", "--max-frames", "4")
    assert result.exit_code == 0, result.output
    assert [r["frame"] for r in read_jsonl(out / "frames.jsonl")] == [0, 3, 6, 9]
    assert read_video(_video_out(out, "clip")) == (4, 128, 96, 4.0)  # fps = source fps / stride


def test_yolo_folder_of_videos_with_frames_and_csv(
    yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = tmp_path / "clips"
    make_video(clips / "a.mp4", frames=4)
    make_video(clips / "sub" / "b.avi", frames=3)
    make_image(clips / "still.jpg")  # not a video: skipped in a folder
    monkeypatch.chdir(tmp_path)
    argv = ["yolo", "video", "clips", "-m", str(yolo_pt), "--imgsz", str(SMALL_IMGSZ), "--conf", "1e-6"]
    result = runner.invoke(app, [*argv, "--max-det", "2", "--save-frames", "-f", "csv", "--json"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "detect-runs" / "yolo-video"
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == read_jsonl(out / "frames.jsonl") and len(lines) == 7
    assert {r["model"] for r in lines} == {"yolo11n-seed0"}
    assert read_video(_video_out(out, "clips/a"))[0] == 4
    assert read_video(_video_out(out, "clips/sub/b"))[0] == 3
    frames = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert frames == [f"clips/a/{i:06d}.jpg" for i in range(4)] + [
        f"clips/sub/b/{i:06d}.jpg" for i in range(3)
    ]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 14 and {r["frame"] for r in rows} == {"0", "1", "2", "3"}


def test_video_url_is_processed(detect_video, http_root) -> None:  # type: ignore[no-untyped-def]
    base, www = http_root
    make_video(www / "clip.mp4", frames=6)
    result, out = detect_video(f"{base}/clip.mp4")
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(out / "frames.jsonl")) == 6
    port = base.rsplit(":", 1)[1]
    assert read_video(_video_out(out, f"urls/127.0.0.1_{port}_clip"))[0] == 6


def test_truncated_video_keeps_what_decoded_and_exits_1(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = truncate(make_video(tmp_path / "cut.avi", frames=20), keep=0.5)
    result, out = detect_video(str(clip))
    assert result.exit_code == 1, result.output
    rows = read_jsonl(out / "frames.jsonl")
    good = [r for r in rows if r["error"] is None]
    assert 3 <= len(good) < 20 and rows[-1]["frame"] == len(good)
    assert (
        rows[-1]["error"] == f"video ends early: decoded {len(good)} of 20 frames (truncated or corrupt file)"
    )
    assert read_video(_video_out(out, "cut"))[0] == len(good)  # finalized and playable
    assert "1 failed" in result.stderr and "video ends early" in result.stderr
    assert "Traceback" not in result.output


def test_one_bad_video_among_good_ones_exits_1(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = make_video(tmp_path / "good.mp4", frames=3)
    (tmp_path / "bad.mp4").write_text("not a video")
    result, out = detect_video(str(good), str(tmp_path / "bad.mp4"))
    assert result.exit_code == 1, result.output
    rows = read_jsonl(out / "frames.jsonl")
    assert [r["error"] for r in rows][-1].startswith("not a readable video") and len(rows) == 4


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{tmp}/notes.mp4", "cannot read {tmp}/notes.mp4: not a readable video"),
        ("{tmp}/missing.mp4", "no videos found ({tmp}/missing.mp4: no such file or folder)"),
        ("97", "cannot read webcam 97: cannot open webcam 97"),
        ("rtsp://127.0.0.1:9/live", "cannot read rtsp://127.0.0.1:9/live: cannot open stream"),
        ("{base}/gone.mp4", "cannot read {base}/gone.mp4: HTTP 404 File not found"),
        ("ftp://h/a.mp4", "unsupported URL scheme 'ftp'"),
    ],
)
def test_faults_that_stop_the_run_exit_2_with_one_line(
    rtdetr_pt: Path, tmp_path: Path, http_root, source: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "notes.mp4").write_text("I am text")
    fill = {"tmp": str(tmp_path), "base": http_root[0]}
    argv = [
        "video",
        source.format(**fill),
        "-m",
        str(rtdetr_pt),
        "--url-timeout",
        "2",
        "-o",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(**fill) in errors[0], result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_video_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom detect_cli.cli import app\n"
        "try:\n    app(['yolo', 'video', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout and "--vid-stride" in proc.stdout, (
        proc.stdout[-500:] + proc.stderr[-500:]
    )


def test_sigint_finalizes_video_and_records_every_frame(fake_models: dict[str, Path], tmp_path: Path) -> None:
    """In a real process, on the fake detector (0.02 s a frame, so the run is still going when signalled)."""
    clip = make_video(tmp_path / "long.mp4", frames=150)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        fake_cli_argv(
            *("video", clip, "--json", "-m", fake_models["rtdetr"]),
            *("--imgsz", SMALL_IMGSZ, "--device", "cpu", "-o", out),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fake_cli_env(delay=0.02),
    )
    assert proc.stdout is not None
    first = [proc.stdout.readline() for _ in range(3)]  # the run is under way
    assert all(json.loads(line)["error"] is None for line in first)
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    records = read_jsonl(out / "frames.jsonl")
    assert 3 <= len(records) < 150 and len(records) == len(first) + len(rest.splitlines())
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert read_video(_video_out(out, "long")) == (len(records), 128, 96, 10.0)
    assert "Interrupted" in stderr and "Traceback" not in stderr
    assert not list(out.rglob("*.part*"))


def test_a_picture_named_like_a_video_ends(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """OpenCV opens a JPEG renamed .mp4 as a one-frame 'video' with no frame count; as a file it must
    end after that frame, not be reopened like a stream that stopped."""
    import shutil

    shutil.copy(make_image(tmp_path / "pic.jpg"), tmp_path / "pic.mp4")
    result, out = detect_video(str(tmp_path / "pic.mp4"))
    assert result.exit_code == 0, result.output
    assert [r["frame"] for r in read_jsonl(out / "frames.jsonl")] == [0]


def test_videos_that_would_share_an_output_each_get_their_own(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Clip.mp4 beside clip.avi (one Clip.mp4 on a case-insensitive disk) and a.mp4 beside a.mov (one
    a.mp4 and one a/ of frames): each video gets its own annotated video and frames folder, named as
    pictures are (they keep their suffix), and every frame of each is in its own video."""
    clips = tmp_path / "clips"
    counts = {"Clip.mp4": 3, "clip.avi": 4, "a.mp4": 5, "a.mov": 6, "b.mp4": 2}
    for name, frames in counts.items():
        make_video(clips / name, frames=frames, fourcc="mp4v" if name.endswith(".mov") else "")
    result, out = detect_video(str(clips), "--save-frames")
    assert result.exit_code == 0, result.output
    suffix = pick_codec().suffix
    videos = sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*{suffix}") if p.is_file())
    names = {"Clip.mp4": "Clip.mp4", "clip.avi": "clip.avi", "a.mp4": "a.mp4", "a.mov": "a.mov", "b.mp4": "b"}
    assert videos == sorted(f"clips/{n}{suffix}" for n in names.values())
    assert len({v.casefold() for v in videos}) == len(videos)
    for source, name in names.items():
        assert read_video(out / "clips" / f"{name}{suffix}")[0] == counts[source], source
        assert len(list((out / "clips" / name).glob("*.jpg"))) == counts[source], source
    folders = [p.name for p in (out / "clips").iterdir() if p.is_dir()]
    assert len({f.casefold() for f in folders}) == len(folders) == len(names)


def test_saved_frames_of_a_avi_beside_a_mp4_mov_are_kept_apart(detect_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """a.avi was named a (its video a.mp4) and a.mp4.mov a.mp4 (its frames in the folder a.mp4/): one
    file and one folder of one name. Each now keeps its suffix: a.avi.<codec>, a.avi/ and a.mp4.<codec>,
    a.mp4/, every frame and video written."""
    first = make_video(tmp_path / "in" / "a.avi", frames=3)
    second = make_video(tmp_path / "in" / "a.mp4.mov", frames=4)
    result, out = detect_video(str(first), str(second), "--save-frames")
    assert result.exit_code == 0, result.output
    assert read_video(_video_out(out, "a.avi"))[0] == 3 and read_video(_video_out(out, "a.mp4"))[0] == 4
    assert sorted(p.name for p in (out / "a.avi").iterdir()) == [f"{i:06d}.jpg" for i in range(3)]
    assert sorted(p.name for p in (out / "a.mp4").iterdir()) == [f"{i:06d}.jpg" for i in range(4)]
    rows = read_jsonl(out / "frames.jsonl")
    assert len(rows) == 7 and all(r["error"] is None for r in rows)
