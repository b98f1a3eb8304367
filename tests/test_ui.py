"""What the terminal shows while slow work runs, and how an informational line differs from a warning."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ
from rich.console import Console
from typer.testing import CliRunner

from detect_cli import backends, ui
from detect_cli.backends import loading
from detect_cli.cli import app
from detect_cli.errors import ExportError
from detect_cli.models import PredictOptions, resolve
from detect_cli.results import Note, busy


def test_a_note_is_said_plainly_and_a_warning_as_one(capsys: pytest.CaptureFixture[str]) -> None:
    ui.warn(Note("exporting yolo11n to onnx (once; cached in [cache])"))
    ui.warn("yolo11n is NMS-free")
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["exporting yolo11n to onnx (once; cached in [cache])", "warning: yolo11n is NMS-free"]


def test_status_off_a_terminal_is_one_plain_line_before_the_work() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    with ui.status("exporting yolo11n to onnx", console):
        said_before = out.getvalue()
    assert said_before == "exporting yolo11n to onnx\n" and out.getvalue() == said_before


def test_status_on_a_terminal_spins_then_leaves_the_line_with_its_seconds() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    with ui.status("exporting yolo11n to onnx", console):
        time.sleep(0.3)  # the spinner refreshes meanwhile
        drawn = out.getvalue()
    assert "exporting yolo11n to onnx" in drawn  # shown while the work runs
    assert out.getvalue().rstrip().endswith("exporting yolo11n to onnx: 0s")


def test_busy_uses_the_callbacks_spinner_or_says_a_note_once() -> None:
    said: list[str] = []
    with busy(said.append, "measuring"):
        pass
    assert said == ["measuring"] and isinstance(said[0], Note)
    with busy(None, "nothing to say it to"):
        pass
    shown: list[str] = []

    def warn(text: str) -> None:
        raise AssertionError("a callback with a spinner is not also given the note")

    warn.busy = lambda text: shown.append(text) or __import__("contextlib").nullcontext()  # type: ignore[attr-defined]
    with busy(warn, "exporting"):
        pass
    assert shown == ["exporting"]


def test_an_export_runs_inside_its_status(yolo_pt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The half minute of an export is shown as it happens (before, one line and then silence)."""
    active: list[str] = []
    seen: list[list[str]] = []

    class Shown:
        def __init__(self, text: str) -> None:
            self.text = text

        def __enter__(self) -> None:
            active.append(self.text)

        def __exit__(self, *exc: object) -> None:
            active.remove(self.text)

    def warn(text: str) -> None:
        pass

    warn.busy = Shown  # type: ignore[attr-defined]

    def export_entry(*args: object, **kwargs: object) -> None:
        seen.append(list(active))
        raise ExportError("stopped here by the test")

    monkeypatch.setattr(loading, "export_entry", export_entry)
    plan = backends.Plan("onnx", "cpu", explicit=True)
    with pytest.raises(ExportError):
        backends.load(resolve(str(yolo_pt), "yolo"), PredictOptions(imgsz=SMALL_IMGSZ), plan, warn)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith("exporting yolo11n-seed0 to onnx")


def test_compare_says_it_measures_memory_between_the_bar_and_the_verdict(
    rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import make_image

    from detect_cli.compare import run

    make_image(tmp_path / "a.jpg")
    monkeypatch.setattr(run, "measure_memory", lambda *args, **kwargs: None)
    argv = ["compare", str(tmp_path / "a.jpg"), "-m", f"{rtdetr_pt},{yolo_pt}", "--imgsz", str(SMALL_IMGSZ)]
    result = CliRunner().invoke(
        app, [*argv, "--device", "cpu", "--backend", "torch", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    err = result.stderr
    bar, verdict = err.index("1/1"), err.index("Verdict")
    for name in ("rtdetr-l-seed0", "yolo11n-seed0"):
        said = err.index(f"measuring {name}'s peak memory")
        assert bar < said < verdict, err


def _video_report(first_ms: float, rest_ms: list[float], first_s: float, seconds: float):  # type: ignore[no-untyped-def]
    from detect_cli.pipeline import RunReport
    from detect_cli.results import ImageResult, Speed

    report = RunReport(Path("out"))
    for n, ms in enumerate([first_ms, *rest_ms]):
        report.summary.add(ImageResult("clip.mp4", "m", speed_ms=Speed(0.0, ms, 0.0), frame=n))
    report.first_result_s, report.first_model_ms, report.seconds = first_s, first_ms, seconds
    return report


def test_video_rates_are_over_the_same_frames() -> None:
    """Before: '1.5 fps end to end (model alone 1.4 fps)', the model's rate with the first frame's setup
    in it and the end-to-end one without. Both now leave out the first frame, and say so."""
    # the first frame: 1 s of setup in the model; then 4 frames of 100 ms in 0.5 s of wall time
    report = _video_report(1000.0, [100.0] * 4, first_s=1.2, seconds=1.7)
    rates = ui.video_rates(report)
    assert rates == ", 8.0 fps end to end, 10.0 fps in the model alone (frames after the first)"


def test_video_rates_with_one_frame_say_none() -> None:
    assert ui.video_rates(_video_report(1000.0, [], first_s=1.2, seconds=1.2)) == ""


def test_video_summary_line_from_a_real_run(tmp_path: Path, rtdetr_pt: Path) -> None:
    """A real run: the end-to-end rate is not above the model's own (the model's time is inside it)."""
    import re

    from conftest import make_video

    make_video(tmp_path / "clip.mp4", frames=6)
    argv = ["video", str(tmp_path / "clip.mp4"), "-m", str(rtdetr_pt), "--imgsz", str(SMALL_IMGSZ)]
    argv += ["--device", "cpu", "--backend", "torch", "--no-save", "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    found = re.search(
        r"([\d.]+) fps end to end, ([\d.]+) fps in the model alone \(frames after the first\)", result.stderr
    )
    assert found, result.stderr
    assert float(found.group(1)) <= float(found.group(2)) * 1.05, result.stderr


def test_quiet_keeps_warnings_and_drops_notes_and_spinners(capsys: pytest.CaptureFixture[str]) -> None:
    said = ui.messages(quiet=True)
    said(Note("exporting yolo11n to onnx"))
    said("yolo11n is NMS-free")
    with busy(said, "checking the onnx export against PyTorch"):
        pass
    assert capsys.readouterr().err.splitlines() == ["warning: yolo11n is NMS-free"]
    assert ui.messages(quiet=False) is ui.warn


def test_quiet_run_on_a_terminal_shows_no_spinner_and_no_progress(yolo_pt: Path, tmp_path: Path) -> None:
    """`-q` in a real process whose stderr is a terminal (a pty), on a first `--backend onnx` run (an
    export and its parity check: the engine's slow steps): nothing on stderr. The export's spinner
    and its line were shown in spite of -q."""
    import sys

    from conftest import make_image

    make_image(tmp_path / "in" / "a.jpg")
    argv = [sys.executable, "-m", "detect_cli", "yolo", "image", str(tmp_path / "in"), "-m", str(yolo_pt)]
    argv += [
        "--backend",
        "onnx",
        "--imgsz",
        str(SMALL_IMGSZ),
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "o"),
        "-q",
    ]
    err = _stderr_on_a_terminal(argv)
    assert (tmp_path / "o" / "results.jsonl").exists()
    assert err.strip() == ""


def test_quiet_compare_on_a_terminal_shows_no_spinner(rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path) -> None:
    """`detect compare -q` on a terminal: its slow steps (each model's peak memory in a new process) show
    no spinner, no progress bar and no notes."""
    import sys

    from conftest import make_image

    make_image(tmp_path / "in" / "a.jpg")
    models = f"{rtdetr_pt},{yolo_pt}"
    argv = [sys.executable, "-m", "detect_cli", "compare", str(tmp_path / "in"), "--models", models]
    argv += ["--imgsz", str(SMALL_IMGSZ), "--device", "cpu", "--runs", "1", "-o", str(tmp_path / "o"), "-q"]
    err = _stderr_on_a_terminal(argv)
    assert (tmp_path / "o" / "report.json").exists()
    assert err.strip() == ""


def _stderr_on_a_terminal(argv: list[str]) -> str:
    """Run `argv` with stderr on a pty (so rich would animate), and return what it printed there."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "COLUMNS": "100"}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal (EIO)
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    text = err.decode(errors="replace")
    assert proc.wait(timeout=300) == 0, text[-2000:]
    return text


def test_a_phase_stops_the_bars_clock_and_its_end_starts_it_afresh() -> None:
    """`compare`'s warm-up: said in place of the label with the clock stopped (no elapsed time, rate or
    ETA counts it); when it ends the label is back and the clock starts from zero."""
    bar = ui.RichProgress("compare", console=Console(file=io.StringIO()))
    bar.start(3)
    bar.phase("warming up rtdetr-l")
    [task] = bar._bar.tasks
    assert task.description == "warming up rtdetr-l" and not task.started and task.elapsed is None
    bar.phase(None)
    [task] = bar._bar.tasks
    assert task.description == "compare" and task.started and task.total == 3 and task.completed == 0
    bar.stop()
