"""Terminal presentation on stderr (progress bar, summary, tables); stdout is kept for `--json` results."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from detect_cli.errors import BadOptionError, OutputError
from detect_cli.results import Note
from detect_cli.signals import SIGPIPE, exit_code, request_stop

if TYPE_CHECKING:
    from detect_cli.backends import CacheEntry
    from detect_cli.pipeline import RunReport
    from detect_cli.results import ImageResult, RunSummary

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False)


READER_GONE = exit_code(SIGPIPE)  # 141: what a shell expects of a writer whose reader left


def silence_stdout(stream: IO[str] | None = None) -> None:
    """Point stdout's file descriptor at /dev/null once it cannot be written (its reader gone, a full
    device): what is still buffered, and the interpreter's last flush, then go nowhere instead of
    failing again ("Exception ignored … BrokenPipeError" at exit)."""
    stream = stream or sys.stdout
    try:
        fd = stream.fileno() if stream is not None else -1
    except (OSError, ValueError):  # not a file (a test's captured stdout): nothing to point elsewhere
        return
    if fd < 0:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class StdoutLines:
    """What `--json` prints on stdout: a sink like the files of a run, with its own ways to fail.

    The stream is the stdout of the moment the command started: the writers call this from a
    background thread while something else may briefly redirect sys.stdout. When its reader goes away
    (`detect … --json | head -1`), the run stops as on Ctrl-C, every record written, and the command
    ends with exit code 141 (`reader_gone`); any other failure (a full device) is an `OutputError`.
    A stdout closed before the start (`>&-`) is refused at once, before anything runs.
    """

    def __init__(self) -> None:
        if sys.stdout is None:
            raise BadOptionError("--json prints on stdout, which is closed: open it, or leave out --json")
        self._stream = sys.stdout
        self.reader_gone = False

    def __call__(self, line: str) -> None:
        self.write(line + "\n")

    def write(self, text: str) -> None:
        if self.reader_gone:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            self.reader_gone = True
            silence_stdout(self._stream)
            if request_stop(SIGPIPE):
                warn("stdout was closed by its reader: stopping (every record so far is complete)")
        except (OSError, ValueError) as e:  # ValueError: the stream itself was closed
            silence_stdout(self._stream)
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise OutputError(
                f"cannot write the --json output to stdout: {reason} (what the run wrote in its "
                "folder is complete)"
            ) from e

    def exit_code(self, code: int) -> int:
        """The command's exit code `code`, or 141 when the reader left before the end."""
        return READER_GONE if self.reader_gone and code in (0, 1) else code


class RichProgress:
    """A progress bar with done/total, rate, ETA and failures so far (`unit` names the rate: /s, fps)."""

    def __init__(self, label: str, console: Console = err_console, unit: str = "/s") -> None:
        self._label = label
        self._unit = unit
        self._failed = 0
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._bar.add_task(label, total=None, rate="", failed="")

    def start(self, total: int | None) -> None:
        self._bar.update(self._task, total=total)
        self._bar.start()

    def phase(self, text: str | None) -> None:
        """An untimed phase (`compare`'s warm-up): `text` in place of the label, the clock stopped;
        None ends it, and the clock, the rate and the ETA start from there."""
        if text is not None:
            self._bar.reset(self._task, start=False, description=text)
        else:
            self._bar.reset(self._task, start=True, description=self._label)

    def advance(self, result: ImageResult) -> None:
        if not result.ok:
            self._failed += 1
        task = self._bar.tasks[0]
        rate = f"{task.speed:.1f}{self._unit}" if task.speed else ""
        self._bar.update(
            self._task, advance=1, rate=rate, failed=f"{self._failed} failed" if self._failed else ""
        )

    def stop(self) -> None:
        self._bar.stop()


def warn(note: str, label: str = "warning") -> None:
    """One warning (or note) line on stderr; the text is shown as is, never read as markup (a file
    name may hold brackets). A `Note` (what is being done, once) is said plainly, not as a warning."""
    if isinstance(note, Note):
        err_console.print(note, markup=False, style="dim")
        return
    err_console.print(f"[yellow]{label}[/]: {escape(note)}")


@contextlib.contextmanager
def status(text: str, console: Console | None = None) -> Iterator[None]:
    """`text` with a spinner on stderr while slow work runs, on a terminal; elsewhere (piped, a log
    file) one plain line before it. Either way the line stays, with the seconds it took."""
    console = console or err_console
    if not console.is_terminal:
        console.print(text, markup=False, style="dim")
        yield
        return
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    started = time.monotonic()
    # No redirection of stdout: it may be carrying --json records.
    live = Live(
        Spinner("dots", Text(text, style="dim")),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with live:
        yield
    console.print(Text(f"{text}: {time.monotonic() - started:.0f}s", style="dim"))


warn.busy = status  # type: ignore[attr-defined]  # results.busy: what the engine's slow steps show


def quiet_warn(note: str) -> None:
    """`warn` for `--quiet`: warnings only. A `Note` (what is being done) is not said, and slow work
    shows no spinner and no line (results.busy finds a `busy` that shows nothing)."""
    if not isinstance(note, Note):
        warn(note)


quiet_warn.busy = lambda text: contextlib.nullcontext()  # type: ignore[attr-defined]


def messages(quiet: bool) -> Callable[[str], None]:
    """The run's message callback: warnings, notes and spinners; with `--quiet`, warnings only."""
    return quiet_warn if quiet else warn


def print_failures(failures: list[tuple[str, str]] | tuple[tuple[str, str], ...], shown: int = 10) -> None:
    """The inputs that failed, one line each (the first `shown`), on stderr."""
    for source, error in failures[:shown]:
        err_console.print(f"  [red]failed[/] {escape(source)}: {escape(error)}")
    if len(failures) > shown:
        err_console.print(f"  … {len(failures) - shown} more failed inputs (see report.json)")


def _print_classes_and_failures(s: RunSummary, console: Console) -> None:
    if s.per_class:
        console.print(
            "  "
            + ", ".join(f"{escape(name)} {n}" for name, n in s.per_class.most_common(12))
            + (" …" if len(s.per_class) > 12 else "")
        )
    for source, error in s.failures[:5]:
        console.print(f"  [red]failed[/] {escape(source)}: {escape(error)}")


def print_summary(report: RunReport, model: str, console: Console = err_console) -> None:
    s = report.summary
    console.print(
        f"[bold]{model}[/]: {s.processed} processed, {s.failed} failed, {s.detections} detections"
        + (f", {s.mean_ms:.1f} ms/image" if s.mean_ms is not None else "")
        + f" ({report.seconds:.1f}s)"
    )
    if report.skipped:
        console.print(
            f"  {report.skipped} skipped: already recorded by an earlier run"
            + (
                f" ({report.skipped_failed} of them failed; --retry-failed redoes those)"
                if report.skipped_failed
                else ""
            )
        )
    _print_classes_and_failures(s, console)
    if s.failed > 5:
        console.print(f"  … {s.failed - 5} more failures in results.jsonl")
    console.print(f"Results in [bold]{escape(str(report.out))}[/]")
    if report.interrupted:
        console.print("[yellow]Interrupted[/]: the results written so far are complete and readable.")


def video_rates(report: RunReport) -> str:
    """', 9.1 fps end to end, 10.2 fps in the model alone (frames after the first)': both rates over the
    same frames, those after the first, which carries the model's one-off setup (the run loop's wall
    time, and the model's own pre-, inference and post-processing time). Empty with one frame."""
    s = report.summary
    if report.first_result_s is None:
        return ""
    frames = s.processed + s.failed - 1  # every frame after the first took its share of the wall time
    wall_s = report.seconds - report.first_result_s
    model_frames = s.processed - (1 if report.first_model_ms else 0)  # the model's time: frames it ran
    model_s = (s.total_ms - report.first_model_ms) / 1000
    if frames <= 0 or wall_s <= 0:
        return ""
    rates = f", {frames / wall_s:.1f} fps end to end"
    if model_frames > 0 and model_s > 0:
        rates += f", {model_frames / model_s:.1f} fps in the model alone"
    return rates + " (frames after the first)"


def print_video_summary(report: RunReport, model: str, console: Console = err_console) -> None:
    """Frames, end-to-end fps and the model's own share, detections per class, notes and outputs."""
    s = report.summary
    console.print(
        f"[bold]{model}[/]: {s.processed} frames processed, {s.failed} failed, {s.detections} detections"
        f"{video_rates(report)}, {report.seconds:.1f}s"
    )
    _print_classes_and_failures(s, console)
    for note in report.notes:
        console.print(f"  [yellow]note[/]: {escape(note)}")
    for path in report.outputs:
        console.print(f"  video: {escape(str(path))}")
    if report.codec:
        console.print(f"  codec: {report.codec}")
    console.print(f"Results in [bold]{escape(str(report.out))}[/] (frames.jsonl: one line per frame)")
    if report.interrupted:
        console.print(
            "[yellow]Interrupted[/]: the videos and frames.jsonl written so far are complete and playable."
        )


def short_path(path: str | Path) -> str:
    """A path as a person writes it: the home folder as ~ (the tables of `detect models` fit 80 columns)."""
    text, home = str(path), str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home.rstrip("/") + "/")):
        return "~" + text[len(home.rstrip("/")) :]
    return text


def ago(when: float, now: float | None = None) -> str:
    """How long ago `when` (seconds since the epoch) was, in the largest unit that is at least one."""
    seconds = max((time.time() if now is None else now) - when, 0.0)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return "just now"


def models_table(rows: list[dict[str, object]]) -> Table:
    """The official models; where their weights live is said once below it (`print_models`)."""
    table = Table(title="Models", title_justify="left")
    for col in ("name", "design", "NMS", "aliases", "mAP50-95", "weights"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["design"]),
            "none" if r["nms_free"] else "yes",
            ", ".join(r["aliases"]),  # type: ignore[arg-type]
            f"{r['published_map50_95']}",
            "cached" if r["present"] else "not yet",
        )
    return table


def print_models(
    rows: list[dict[str, object]],
    exports: list[dict[str, object]],
    weights_dir: Path,
    exports_dir: Path,
    used_mib: float,
    cap_mib: float,
    console: Console = out_console,
) -> None:
    """`detect models` as a person reads it, 80 columns wide (`--json` has every field in full)."""
    console.print(models_table(rows))
    console.print("mAP50-95: as published, on COCO val2017 at 640 px.")
    console.print(
        f"Weights: {short_path(weights_dir / 'weights')}/ (DETECT_CACHE_DIR moves it)", markup=False
    )
    if not exports:
        console.print("No cached exports (made on first use of --backend onnx, openvino or auto).")
        return
    console.print(exports_table(exports))
    console.print(
        f"Exports: {short_path(exports_dir)}/, {used_mib:.0f} of {cap_mib:.0f} MiB "
        "(DETECT_EXPORT_CACHE_MAX; least recently used go first)",
        markup=False,
    )


def export_row(entry: CacheEntry) -> dict[str, object]:
    """One cached export, for `detect models` (table or JSON)."""
    m = entry.manifest
    checked = {p: v.get("ok") for p, v in m.get("parity", {}).items()}
    calibration = m.get("calibration")  # an INT8 export: the pictures it was calibrated on
    return {
        "model": m.get("model"),
        "backend": m.get("backend"),
        "precision": m.get("precision"),
        "calibration": calibration,
        "imgsz": m.get("imgsz"),
        "size_mb": round(entry.size_bytes / 2**20, 1),
        "parity_ok": checked,
        "created": m.get("created"),
        "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(entry.last_used)),
        "source": m.get("source"),
        "path": str(entry.path),
    }


def exports_table(rows: list[dict[str, object]], now: float | None = None) -> Table:
    table = Table(title="Cached exports (detect models --clear-cache removes them)", title_justify="left")
    for col in ("model", "backend", "imgsz", "size", "matches torch", "last used", "folder"):
        table.add_column(col, no_wrap=col != "matches torch")
    for r in rows:
        parity = r["parity_ok"]
        assert isinstance(parity, dict)
        calibration = r.get("calibration")
        backend = str(r["backend"])
        if isinstance(calibration, dict):  # "openvino int8 (300 pictures, 1a2b3c4d)"
            backend += f" int8 ({calibration.get('pictures')} pictures, {str(calibration.get('sha256'))[:8]})"
        table.add_row(
            str(r["model"]),
            backend,
            str(r["imgsz"]),
            f"{r['size_mb']} MB",
            ", ".join(f"{p} {'yes' if ok else 'NO'}" for p, ok in parity.items()) or "not checked",
            ago(time.mktime(time.strptime(str(r["last_used"]), "%Y-%m-%dT%H:%M:%S")), now),
            Path(str(r["path"])).name[:8],  # the key's start: enough to tell exports apart
        )
    return table
