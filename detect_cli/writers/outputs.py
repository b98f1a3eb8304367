"""What a run writes: the per-input files it asked for, and its sinks with the record last."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from detect_cli.writers.annotated import AnnotatedImageWriter
from detect_cli.writers.jsonl import RESULTS_JSONL
from detect_cli.writers.labels import YoloTxtWriter
from detect_cli.writers.sinks import JsonlWriter, Sink, SinkGroup

FORMATS = ("jsonl", "csv", "txt", "coco")


def output_paths(out: Path, rel_path: PurePosixPath, formats: Iterable[str], save_images: bool) -> list[Path]:
    """Every file a run may write for one input (for the check that none of them is an input)."""
    paths = []
    if "txt" in set(formats):
        paths.append(YoloTxtWriter.target(out / "labels", rel_path))
    if save_images:
        paths += AnnotatedImageWriter.targets(out, rel_path)
    return paths


def output_sinks(
    out: Path, formats: Iterable[str], save_images: bool, caption: str | None = None
) -> list[Sink]:
    """The per-input files a run asked for (annotated images, with `caption` on them, YOLO labels)."""
    sinks: list[Sink] = []
    if "txt" in set(formats):
        sinks.append(YoloTxtWriter(out / "labels"))
    if save_images:
        sinks.append(AnnotatedImageWriter(out, caption))
    return sinks


def open_sinks(
    out: Path,
    formats: Iterable[str],
    names: dict[int, str],
    save_images: bool,
    echo: Callable[[str], None] | None = None,
    record: str = RESULTS_JSONL,
    caption: str | None = None,
) -> SinkGroup:
    """The sinks of a run, the `record` jsonl last (results.jsonl, or frames.jsonl for videos): an input
    is recorded only once its files are written (or as failed, when they could not be).

    The tables (csv, coco) are not among them: `write_tables` builds them from the record at the end.
    """
    return SinkGroup(output_sinks(out, formats, save_images, caption), [JsonlWriter(out / record, echo)])
