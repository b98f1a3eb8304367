"""The gallery: every side-by-side picture, where the models disagree most first, with thumbnails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detect_cli.compare.results import Comparison

GALLERY_THUMBS = 40  # side-by-sides embedded as thumbnails in report.html; the others are linked
GALLERY_BYTES = 20 * 2**20  # ... and at most this many bytes of thumbnails
GALLERY_WIDTH = 560  # px: a thumbnail's width
HTML_PICTURE_WIDTH = 1600  # px: embedded pictures are scaled down to keep report.html small


@dataclass(frozen=True, slots=True)
class GalleryItem:
    source: str
    path: str  # the side-by-side picture, relative to the report folder
    agreement: float | None
    boxes: int
    thumbnail: bytes | None = None  # JPEG, embedded in report.html


def gallery(c: Comparison, out: Path | None) -> list[GalleryItem]:
    """The side-by-side pictures written for this comparison, the lowest agreement first (inputs where
    no model found a box last); the first GALLERY_THUMBS (within GALLERY_BYTES) get a thumbnail."""
    if out is None:
        return []
    items = []
    for row in c.per_input:
        rel = Path("side-by-side", row.rel_path).with_suffix(".jpg").as_posix()
        if (out / rel).is_file():
            items.append(GalleryItem(row.source, rel, row.agreement, row.boxes))
    items.sort(key=lambda g: (g.agreement is None, g.agreement or 0.0, g.source))
    total = 0
    for k, item in enumerate(items[:GALLERY_THUMBS]):
        thumb = _thumbnail(out / item.path)
        if thumb is None or total + len(thumb) > GALLERY_BYTES:
            break
        total += len(thumb)
        items[k] = GalleryItem(item.source, item.path, item.agreement, item.boxes, thumb)
    return items


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


def _agreement_text(g: GalleryItem) -> str:
    if g.agreement is None:
        return "no boxes"
    return f"agreement {100 * g.agreement:.0f}%, {g.boxes} boxes"


GALLERY_NOTE = (
    "Every side-by-side picture, the inputs where the models agree least first (agreement: 2·matched / "
    "boxes of both, averaged over the pairs). The first {thumbs} are shown here (at most "
    f"{GALLERY_THUMBS} thumbnails or {GALLERY_BYTES // 2**20} MB); each links to the full picture in "
    "side-by-side/."
)


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
