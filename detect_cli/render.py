"""Drawing detections on images, as ultralytics' Annotator draws them in its cv2 mode (its palette, line
width, label placement), without importing ultralytics (and torch): a run on a cached export draws
its pictures without either. tests/test_render.py checks the pixels against ultralytics' own Annotator."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np

# ultralytics.utils.plotting.Colors' palette (RGB hex), and the box colours (BGR) whose label text it
# writes in a dark blue or in white instead of the default white (AGPL-3.0, as this project).
PALETTE = (
    "042AFF 0BDBEB F3F3F3 00DFB7 111F68 FF6FDD FF444F CCED00 00F344 BD00FF "
    "00B4FF DD00BA 00FFFF 26C000 01FFB3 7D24FF 7B0068 FF1B6C FC6D2F A2FF0B"
).split()
DARK_TEXT = {
    (235, 219, 11),
    (243, 243, 243),
    (183, 223, 0),
    (221, 111, 255),
    (0, 237, 204),
    (68, 243, 0),
    (255, 255, 0),
    (179, 255, 1),
    (11, 255, 162),
}
TEXT_DARK_BLUE = (104, 31, 17)
WHITE = (255, 255, 255)

# A side-by-side panel: its title and boxes, and for a tracked model each box's track id (None: none).
Panel = tuple[str, Sequence[Detection]] | tuple[str, Sequence[Detection], Sequence[int | None]]


def class_color(class_id: int) -> tuple[int, int, int]:
    """The BGR colour of a class, as ultralytics' `colors(class_id, bgr=True)`."""
    h = PALETTE[class_id % len(PALETTE)]
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def draw_detections(
    image: np.ndarray,
    detections: Sequence[Detection],
    title: str | None = None,
    track_ids: Sequence[int | None] = (),
    trails: Sequence[tuple[int, Sequence[tuple[int, int]]]] = (),
) -> np.ndarray:
    """A copy of `image` with labelled boxes, as ultralytics draws them: `class conf` in the class's
    colour. A box a track holds (its id in `track_ids`, in `detections` order; None or missing: none)
    is labelled `#id class conf` in its track's colour, as ultralytics colours tracks, and each
    track's recent centres in `trails` are joined as a line. Every picture of a tracked run (video,
    saved frames, side-by-side panels) is drawn here, so they all show the ids alike."""
    import cv2
    import numpy as np

    out = image.copy()
    lw = max(round(sum(out.shape) / 2 * 0.003), 2)  # ultralytics' default line width (channels counted)
    for track_id, points in trails:
        if len(points) > 1:
            pts = np.array(points, np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, class_color(track_id), lw, cv2.LINE_AA)
    for det, track_id in itertools.zip_longest(detections, track_ids[: len(detections)]):
        label = f"{det.class_name} {det.confidence:.2f}"
        if track_id is None:
            box_label(out, det.xyxy, label, class_color(det.class_id), lw)
        else:
            box_label(out, det.xyxy, f"#{track_id} {label}", class_color(track_id), lw)
    if title:
        out = draw_title(out, title)
    return out


def box_label(
    image: np.ndarray, box: Sequence[float], label: str, color: tuple[int, int, int], lw: int
) -> None:
    """One box and its label, in place: Annotator.box_label's cv2 branch."""
    import cv2

    text = TEXT_DARK_BLUE if color in DARK_TEXT else WHITE
    p1 = (int(box[0]), int(box[1]))
    cv2.rectangle(image, p1, (int(box[2]), int(box[3])), color, thickness=lw, lineType=cv2.LINE_AA)
    if not label:
        return
    tf, sf = max(lw - 1, 1), lw / 3
    w, h = cv2.getTextSize(label, 0, fontScale=sf, thickness=tf)[0]
    h += 3
    outside = p1[1] >= h  # the label fits above the box
    if p1[0] > image.shape[1] - w:  # keep it inside the right edge
        p1 = (image.shape[1] - w, p1[1])
    p2 = (p1[0] + w, p1[1] - h if outside else p1[1] + h)
    cv2.rectangle(image, p1, p2, color, -1, cv2.LINE_AA)
    origin = (p1[0], p1[1] - 2 if outside else p1[1] + h - 1)
    cv2.putText(image, label, origin, 0, sf, text, thickness=tf, lineType=cv2.LINE_AA)


def draw_title(image: np.ndarray, title: str) -> np.ndarray:
    """Write a caption on a dark band at the top-left of the image (in place, returned for chaining)."""
    import cv2

    scale = max(image.shape[1] / 1200, 0.5)
    thickness = max(int(scale * 2), 1)
    (w, h), base = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image, (0, 0), (w + 12, h + base + 12), (32, 32, 32), -1)
    cv2.putText(
        image, title, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
    )
    return image


def title_band(image: np.ndarray, title: str) -> np.ndarray:
    """`image` with a dark band above it holding `title`: nothing of the picture (box labels in its
    top-left corner included) is covered. The band's height depends on the width only, so the frames of
    one video keep one size."""
    import numpy as np

    band = np.full((title_band_height(image.shape[1]), image.shape[1], 3), 32, np.uint8)
    draw_title(band, title)
    return np.vstack([band, image])


def title_band_height(width: int) -> int:
    """The height of `title_band`'s band over a picture `width` pixels wide (as `draw_title` sizes it)."""
    scale = max(width / 1200, 0.5)
    thickness = max(int(scale * 2), 1)
    (_, h), base = _text_size("Ag", scale, thickness)
    return h + base + 12


def _text_size(text: str, scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    import cv2

    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)


def side_by_side(image: np.ndarray, panels: Sequence[Panel]) -> np.ndarray:
    """One render of `image` per panel, left to right: model A | model B | …, each with its title in a
    band above it (`title_band`), not over the picture. A panel is (title, detections), or (title,
    detections, track ids) for a tracked model's boxes (drawn with their ids by `draw_detections`).

    The result is exactly as wide as the renders put together; a thin line is drawn over each seam.
    """
    import numpy as np

    renders = []
    for title, detections, *ids in panels:
        drawn = draw_detections(image, detections, track_ids=ids[0] if ids else ())
        renders.append(title_band(drawn, title))
    out = np.hstack(renders) if renders else image.copy()
    x = 0
    for r in renders[:-1]:
        x += r.shape[1]
        out[:, max(x - 1, 0) : x + 1] = 255
    return out
