"""Slips a newcomer makes on the command line, refused before any model loads, each with its fix:
ultralytics' `key=value` style, a value after a plain flag, and a video given to `detect image` (or a
picture to `detect video`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_image, make_video
from typer.testing import CliRunner

from detect_cli.backends import loading
from detect_cli.cli import app

runner = CliRunner()


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: every refusal here comes before it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "load", refuse)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding bus.jpg and clip.mp4, made the working folder (sources are given by name)."""
    make_image(tmp_path / "bus.jpg")
    make_video(tmp_path / "clip.mp4", frames=3)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(args: list[str]) -> str:
    result = runner.invoke(app, [*args, "--device", "cpu", "-o", "out"])
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert not Path("out").exists()
    return errors[0].removeprefix("error: ")


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (["image", "bus.jpg", "conf=0.5"], "did you mean `--conf 0.5`?"),
        (["image", "bus.jpg", "imgsz=320", "half=True"], "did you mean `--imgsz 320`, `--half`?"),
        (["image", "bus.jpg", "save=False"], "did you mean `--no-save`?"),
        (["image", "bus.jpg", "nms=false"], "did you mean to leave `--nms` out"),
        (["image", "bus.jpg", "max_det=10"], "did you mean `--max-det 10`?"),
        (["image", "bus.jpg", "model=rtdetr-x.pt"], "did you mean `--model rtdetr-x.pt`?"),
        (["compare", "bus.jpg", "model=yolo11s.pt"], "did you mean `--models yolo11s.pt`?"),
        (["image", "source=bus.jpg"], "did you mean `bus.jpg` (a SOURCE is given as it is)?"),
        (["video", "clip.mp4", "vid_stride=2"], "did you mean `--vid-stride 2`?"),
        (["explain", "bus.jpg", "objects=3"], "did you mean `--objects 3`?"),
    ],
)
def test_key_value_source_is_refused_with_the_option(
    here: Path, no_model_loads: None, args: list[str], fix: str
) -> None:
    message = _error(args)
    assert ("not a file" in message or "not files" in message) and fix in message, message


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (["image", "bus.jpg", "--nms", "true"], "--nms takes no value; did you mean `--nms`?"),
        (["image", "--nms", "yes", "bus.jpg"], "did you mean `--nms`?"),
        (["image", "bus.jpg", "--save", "false"], "did you mean `--no-save`?"),
        (["image", "bus.jpg", "--no-save", "no"], "did you mean `--save`?"),
        (["image", "bus.jpg", "--half", "0"], "did you mean to leave `--half` out"),
        (["image", "bus.jpg", "-q", "1"], "-q takes no value; did you mean `-q`?"),
        (["video", "clip.mp4", "--save-frames", "on"], "did you mean `--save-frames`?"),
        (["compare", "bus.jpg", "--no-memory", "True"], "did you mean `--no-memory`?"),
    ],
)
def test_a_value_after_a_plain_flag_is_refused(
    here: Path, no_model_loads: None, args: list[str], fix: str
) -> None:
    message = _error(args)
    assert "is not a file" in message and fix in message, message


def test_a_file_of_that_name_is_a_source(here: Path, fake_models: dict[str, Path]) -> None:
    """`conf=1` and `true` are sources when files of those names exist."""
    make_image(here / "conf=1.jpg").rename(here / "conf=1")
    make_image(here / "true.jpg").rename(here / "true")
    weights = str(fake_models["rtdetr"])
    result = runner.invoke(
        app,
        [
            "image",
            "conf=1",
            "--nms",
            "true",
            "-m",
            weights,
            "--device",
            "cpu",
            "--imgsz",
            "64",
            "-o",
            "out",
        ],
    )
    assert "did you mean" not in result.stderr, result.stderr
    assert "2 processed" in result.stderr, result.output


def test_a_webcam_index_after_a_flag_is_a_webcam(here: Path, no_model_loads: None) -> None:
    """`detect video --save-frames 0`: 0 may be the webcam; it is opened as one (and here there is none)."""
    result = runner.invoke(app, ["video", "--save-frames", "0", "--device", "cpu", "-o", "out"])
    assert "did you mean" not in result.stderr and "webcam 0" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["image", "clip.mp4"],
            "clip.mp4 is a video; `detect image` reads pictures: run `detect video clip.mp4`",
        ),
        (
            ["yolo", "image", "bus.jpg", "clip.mp4"],
            "clip.mp4 is a video; `detect yolo image` reads pictures: run `detect yolo video clip.mp4`",
        ),
        (
            ["explain", "clip.mp4"],
            "clip.mp4 is a video; `detect explain` reads pictures: run `detect video clip.mp4`",
        ),
        (
            ["video", "bus.jpg"],
            "bus.jpg is a picture; `detect video` reads videos: run `detect image bus.jpg`",
        ),
        (
            ["yolo", "video", "bus.jpg"],
            "bus.jpg is a picture; `detect yolo video` reads videos: run `detect yolo image bus.jpg`",
        ),
    ],
)
def test_the_other_kind_of_input_names_the_command_that_reads_it(
    here: Path, no_model_loads: None, args: list[str], message: str
) -> None:
    assert _error(args) == message


def test_folders_keep_picking_their_own_kind(here: Path, fake_models: dict[str, Path]) -> None:
    """A folder holding both is no mistake: `detect image` takes its pictures (and `detect video` its
    videos)."""
    weights = str(fake_models["rtdetr"])
    result = runner.invoke(
        app, ["image", ".", "-m", weights, "--device", "cpu", "--imgsz", "64", "-o", "out"]
    )
    assert result.exit_code == 0 and "1 processed" in result.stderr, result.output


def test_a_real_shell_line_from_ultralytics_habits(tmp_path: Path) -> None:
    """As typed in a shell: the refusal comes before torch or ultralytics is imported."""
    make_image(tmp_path / "bus.jpg")
    code = (
        "import sys\nfrom detect_cli.cli import app\n"
        "try:\n    app(['image', 'bus.jpg', 'conf=0.5', 'iou=0.6'])\nexcept SystemExit as e:\n"
        "    heavy = sorted(m for m in ('torch', 'ultralytics') if m in sys.modules)\n"
        "    print('EXIT', e.code, 'HEAVY', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "EXIT 2 HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert (
        proc.stderr.strip()
        == "error: 'conf=0.5', 'iou=0.6' are not files: did you mean `--conf 0.5`, `--iou 0.6`?"
    )
