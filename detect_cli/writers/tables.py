"""The tables, results.csv and coco_results.json, built from the run's record when a run ends, so they
hold exactly what it records, resumed runs included.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli.errors import OutputError
from detect_cli.models import is_coco80
from detect_cli.results import ImageResult
from detect_cli.tracking import TrackedResult, track_ids

if TYPE_CHECKING:
    import numpy as np
from detect_cli.writers.ids import ImageIds
from detect_cli.writers.jsonl import FRAMES_JSONL, RESULTS_JSONL, iter_jsonl
from detect_cli.writers.sinks import WholeFile

CSV_COLUMNS = (
    "source",
    "width",
    "height",
    "model",
    "class_id",
    "class_name",
    "confidence",
    "x1",
    "y1",
    "x2",
    "y2",
    "error",
)
TRACK_COLUMN = "track_id"  # last, after the columns every run has, in a tracked run's results.csv


class CsvWriter(WholeFile):
    """results.csv: one row per detection; an input with no detection (or an error) still gets a row.

    For videos (`frames=True`) each row also names its frame and time after the source. A tracked run
    (`tracked=True`) adds a last column, `track_id`: the id of the track that holds the box, empty for a
    box no track holds (and for a row without a box), so rows join across frames. An untracked run's
    columns stay exactly CSV_COLUMNS (with frame and time for videos): scripts read them by position.
    """

    def __init__(self, path: Path, frames: bool = False, tracked: bool = False) -> None:
        super().__init__(path)
        self._frames = frames
        self._tracked = tracked
        self._csv = csv.writer(self._f)
        head = (CSV_COLUMNS[0], "frame", "time_s", *CSV_COLUMNS[1:]) if frames else CSV_COLUMNS
        self._csv.writerow((*head, TRACK_COLUMN) if tracked else head)

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        head = [result.source, result.width, result.height, result.model]
        if self._frames:
            time_s = "" if result.time_s is None else f"{result.time_s:.4f}"
            head[1:1] = ["" if result.frame is None else result.frame, time_s]
        if not result.detections:
            self._csv.writerow(
                [*head, "", "", "", "", "", "", "", result.error or "", *self._track_cell(None)]
            )
        for d, track_id in zip(result.detections, track_ids(result), strict=True):
            box = (f"{v:.3f}" for v in d.xyxy)
            row = [*head, d.class_id, d.class_name, f"{d.confidence:.6f}", *box, ""]
            self._csv.writerow(row + self._track_cell(track_id))

    def _track_cell(self, track_id: int | None) -> list[object]:
        """The track_id cell of a tracked run's row (empty: no track holds the box); none otherwise."""
        if not self._tracked:
            return []
        return ["" if track_id is None else track_id]


def coco80_to_coco91() -> list[int]:
    from ultralytics.data.converter import coco80_to_coco91_class

    return coco80_to_coco91_class()


class CocoWriter(WholeFile):
    """coco_results.json: the COCO results format (a list of {image_id, category_id, bbox, score}).

    Streams the array to a temporary file and renames it at close. For models with the 80 COCO classes,
    category ids are mapped to COCO's 91-id scheme so the file scores against COCO annotations as is.
    `image_id` is the one the run's record gave the input (`ImageIds`); `write` gives one the same way.
    """

    def __init__(self, path: Path, names: dict[int, str]) -> None:
        super().__init__(path)
        self._f.write("[")
        self._first = True
        self._ids = ImageIds()
        self._category = coco80_to_coco91() if is_coco80(names) else None

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        self.add(result, self._ids.assign(result.to_dict()))

    def add(self, result: ImageResult, image_id: int) -> None:
        """The result's detections, as the image `image_id`."""
        if not result.ok:
            return
        for d in result.detections:
            x1, y1, x2, y2 = d.xyxy
            record = {
                "image_id": image_id,
                "category_id": self._category[d.class_id] if self._category else d.class_id,
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                "score": round(d.confidence, 5),
                "file_name": result.source,
            }
            self._f.write(("" if self._first else ",") + "\n" + json.dumps(record))
            self._first = False

    def _finish(self) -> None:
        self._f.write("\n]\n")


TABLES = {"csv": "results.csv", "coco": "coco_results.json"}


def write_tables(
    out: Path,
    formats: Iterable[str],
    names: dict[int, str],
    record: str = RESULTS_JSONL,
    tracked: bool = False,
) -> list[Path]:
    """(Re)build results.csv / coco_results.json from the run's record (out/results.jsonl, or
    frames.jsonl), streaming, each renamed into place when complete. Returns the files written.
    `tracked`: the run tracked its boxes (--track), so the record holds their track ids, and
    results.csv has a track_id column."""
    fmts = set(formats)
    makers: list[WholeFile] = []
    if "csv" in fmts:
        makers.append(CsvWriter(out / TABLES["csv"], frames=record == FRAMES_JSONL, tracked=tracked))
    if "coco" in fmts:
        makers.append(CocoWriter(out / TABLES["coco"], names))
    if not makers:
        return []
    jsonl = out / record
    try:
        ids = ImageIds()  # records of older versions hold no image_id: given one here, past those held
        for r in iter_jsonl(jsonl) if jsonl.exists() else ():
            ids.note(r)
        records = iter_jsonl(jsonl) if jsonl.exists() else iter(())
        for r in records:
            result = TrackedResult.from_dict(r) if tracked else ImageResult.from_dict(r)
            for m in makers:
                if isinstance(m, CocoWriter):
                    m.add(result, ids.assign(r))
                else:
                    m.write(result, PurePosixPath(result.source), None)
        for m in makers:
            m.close()
    except BaseException as e:
        for m in makers:
            m.abort()
        if isinstance(e, OSError):
            raise OutputError(
                f"cannot write {', '.join(m.path.name for m in makers)}: {e.strerror or e} "
                f"(the records are complete in {jsonl}; rerun with --resume to build the tables)"
            ) from e
        raise
    return [m.path for m in makers]
