"""Terminal presentation on stderr (progress bar, summary, tables); stdout is kept for `--json` results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from detect_cli.backends import CacheEntry
    from detect_cli.pipeline import RunReport
    from detect_cli.results import ImageResult, RunSummary

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False)


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
    name may hold brackets)."""
    err_console.print(f"[yellow]{label}[/]: {escape(note)}")


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


def print_video_summary(report: RunReport, model: str, console: Console = err_console) -> None:
    """Frames, end-to-end fps and the model's own share, detections per class, notes and outputs."""
    s = report.summary
    # After the first result: it carries the model's one-off setup, which is not a rate.
    steady_s = report.seconds - (report.first_result_s or 0.0)
    done = s.processed + s.failed - 1
    fps = f", {done / steady_s:.1f} fps end to end" if done > 0 and steady_s > 0 else ""
    model_fps = f" (model alone {1000 / s.mean_ms:.1f} fps)" if s.mean_ms else ""
    console.print(
        f"[bold]{model}[/]: {s.processed} frames processed, {s.failed} failed, {s.detections} detections"
        f"{fps}{model_fps}, {report.seconds:.1f}s"
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


def models_table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="Models", title_justify="left")
    for col in ("name", "design", "NMS", "aliases", "published mAP50-95", "weights", "present"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["design"]),
            "none" if r["nms_free"] else "yes",
            ", ".join(r["aliases"]),  # type: ignore[arg-type]
            f"{r['published_map50_95']}",
            str(r["weights"]),
            "yes" if r["present"] else "no",
        )
    return table


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


def exports_table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="Cached exports (detect models --clear-cache removes them)", title_justify="left")
    for col in ("model", "backend", "imgsz", "size", "matches torch", "created", "last used", "folder"):
        table.add_column(col)
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
            str(r["created"])[:16],
            str(r["last_used"])[:16],
            Path(str(r["path"])).name,
        )
    return table
