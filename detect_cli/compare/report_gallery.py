"""The gallery: every side-by-side picture, the inputs where the models disagree most first. The first
ones get a thumbnail (the side-by-side picture, scaled) and, for report.html's viewer, the input's own
picture (scaled, without boxes) with every model's boxes, time and box count read back from
`detections/<model>.jsonl`, so the page draws the boxes itself and each model's can be hidden."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detect_cli.compare.results import DETECTIONS, Comparison, InputAgreement

GALLERY_THUMBS = 40  # side-by-sides embedded as thumbnails in report.html; the others are linked
GALLERY_BYTES = 20 * 2**20  # ... and at most this many bytes of thumbnails and viewer pictures
GALLERY_WIDTH = 560  # px: a thumbnail's width
VIEW_WIDTH = 960  # px: the width of an input's picture in the viewer
HTML_PICTURE_WIDTH = 1600  # px: embedded pictures are scaled down to keep report.html small


@dataclass(frozen=True, slots=True)
class ModelView:
    """One model on one input: its time, its boxes (x1, y1, x2, y2, class, confidence; in the input's
    pixels) and whether it failed there."""

    label: str
    ms: float | None
    boxes: tuple[tuple[float, float, float, float, str, float], ...] = ()
    failed: bool = False


@dataclass(frozen=True, slots=True)
class GalleryItem:
    source: str
    path: str  # the side-by-side picture, relative to the report folder
    agreement: float | None
    boxes: int
    thumbnail: bytes | None = None  # JPEG, embedded in report.html
    frame: int | None = None
    time_s: float | None = None
    models: tuple[ModelView, ...] = ()
    picture: bytes | None = None  # the input itself, scaled to VIEW_WIDTH (JPEG), for the viewer
    size: tuple[int, int] | None = None  # the input's (width, height): the boxes' coordinate space

    @property
    def where(self) -> str:
        """A video frame's place: "frame 12, 0:00.40"; "" for a picture."""
        if self.frame is None:
            return ""
        if self.time_s is None:
            return f"frame {self.frame}"
        minutes, seconds = divmod(self.time_s, 60)
        return f"frame {self.frame}, {int(minutes)}:{seconds:05.2f}"

    @property
    def agreement_text(self) -> str:
        if self.agreement is None:
            return "no boxes"
        return f"agreement {100 * self.agreement:.0f}%, {self.boxes} boxes"


GALLERY_NOTE = (
    "Every side-by-side picture, the inputs where the models agree least first (agreement: 2·matched / "
    "boxes of both, averaged over the pairs). The first {thumbs} are shown here (at most "
    f"{GALLERY_THUMBS} thumbnails or {GALLERY_BYTES // 2**20} MB); click one to see it large, with each "
    "model's boxes drawn over the picture (← → move, Esc closes); each links to the full picture in "
    "side-by-side/."
)


def gallery(c: Comparison, out: Path | None) -> list[GalleryItem]:
    """The side-by-side pictures written for this comparison, the lowest agreement first (inputs where
    no model found a box last); the first GALLERY_THUMBS (within GALLERY_BYTES) get a thumbnail and the
    viewer's data."""
    if out is None:
        return []
    rows: list[tuple[InputAgreement, str]] = []
    for row in c.per_input:
        rel = Path("side-by-side", row.rel_path).with_suffix(".jpg").as_posix()
        if (out / rel).is_file():
            rows.append((row, rel))
    rows.sort(key=lambda r: (r[0].agreement is None, r[0].agreement or 0.0, r[0].source, r[0].frame or 0))
    items = [GalleryItem(r.source, rel, r.agreement, r.boxes, None, r.frame, r.time_s) for r, rel in rows]
    shown = items[:GALLERY_THUMBS]
    records = _records(out, [m.info.label for m in c.models], {(g.source, g.frame) for g in shown})
    total = 0
    for k, item in enumerate(shown):
        thumb = _thumbnail(out / item.path)
        if thumb is None:
            break
        views, size = _views(c, records, (item.source, item.frame))
        picture = _input_picture(item.source, item.frame)
        picture = picture if _same_shape(picture, size) else None
        if total + len(thumb) + len(picture or b"") > GALLERY_BYTES:
            break
        total += len(thumb) + len(picture or b"")
        items[k] = GalleryItem(
            item.source, item.path, item.agreement, item.boxes, thumb, item.frame, item.time_s, views,
            picture, size,
        )  # fmt: skip
    return items


def _records(out: Path, labels: Sequence[str], wanted: set[tuple[str, int | None]]) -> dict[str, dict]:
    """Each model's detections.jsonl records for the `wanted` (source, frame) inputs."""
    found: dict[str, dict] = {}
    for label in labels:
        found[label] = {}
        path = out / DETECTIONS / f"{label}.jsonl"
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by Ctrl-C
                key = (record.get("source"), record.get("frame"))
                if key in wanted:
                    found[label][key] = record
    return found


def _views(
    c: Comparison, records: dict[str, dict], key: tuple[str, int | None]
) -> tuple[tuple[ModelView, ...], tuple[int, int] | None]:
    """Each model's view of one input, and the input's (width, height) as the models saw it."""
    size = None
    for m in c.models:
        if (r := records[m.info.label].get(key)) and r.get("width") and r.get("height"):
            size = (int(r["width"]), int(r["height"]))
    return tuple(_view(m.info.label, records[m.info.label].get(key)) for m in c.models), size


def _view(label: str, record: dict[str, Any] | None) -> ModelView:
    if record is None:
        return ModelView(label, None)
    speed = record.get("speed_ms") or {}
    ms = sum(v for v in speed.values() if isinstance(v, int | float)) if speed else None
    boxes = tuple(
        (*(round(float(v), 1) for v in d["xyxy"]), str(d["class_name"]), round(float(d["confidence"]), 3))
        for d in record.get("detections") or ()
    )
    return ModelView(label, ms, boxes, bool(record.get("error")))  # type: ignore[arg-type]


def _input_picture(source: str, frame: int | None) -> bytes | None:
    """The input itself, without boxes, scaled to VIEW_WIDTH as JPEG: read again from a local picture
    file, or the frame from a local video file. None for a URL, a stream, or a file that is gone: the
    viewer then shows the side-by-side picture."""
    import cv2

    path = Path(source)
    if not path.is_file():  # also refuses FIFOs and devices: nothing here can block
        return None
    if frame is None:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        capture = cv2.VideoCapture(str(path))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, image = capture.read()
        finally:
            capture.release()
        image = image if ok else None
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > VIEW_WIDTH:
        image = cv2.resize(image, (VIEW_WIDTH, round(h * VIEW_WIDTH / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 82])
    return buf.tobytes() if ok else None


def _same_shape(picture: bytes | None, size: tuple[int, int] | None) -> bool:
    """Whether the picture read again has the aspect the models saw (a rotated or replaced file has not:
    the boxes would not fit it)."""
    import cv2
    import numpy as np

    if picture is None or not size or not all(size):
        return False
    image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    if image is None:
        return False
    return abs(image.shape[1] / image.shape[0] - size[0] / size[1]) < 0.05 * size[0] / size[1]


def _thumbnail(path: Path) -> bytes | None:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > GALLERY_WIDTH:
        image = cv2.resize(image, (GALLERY_WIDTH, round(h * GALLERY_WIDTH / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else None


def small_jpeg_file(path: Path, width: int = HTML_PICTURE_WIDTH) -> bytes:
    """A picture file scaled down to `width` and encoded as JPEG, to embed; b"" when it cannot be read."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        return b""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""
