"""Drawing detections on images with ultralytics' own Annotator (cv2 mode: no font download)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np


def draw_detections(
    image: np.ndarray, detections: Sequence[Detection], title: str | None = None
) -> np.ndarray:
    """A copy of `image` with labelled boxes (colours per class, as ultralytics draws them)."""
    from ultralytics.utils.plotting import Annotator, colors

    # example="" keeps the cv2 backend: PIL mode would look for (and try to download) a font.
    annotator = Annotator(image.copy(), pil=False, example="")
    for det in detections:
        annotator.box_label(
            det.xyxy, f"{det.class_name} {det.confidence:.2f}", color=colors(det.class_id, True)
        )
    out = annotator.result()
    if title:
        out = draw_title(out, title)
    return out


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


def side_by_side(image: np.ndarray, panels: Sequence[tuple[str, Sequence[Detection]]]) -> np.ndarray:
    """One render of `image` per (title, detections), left to right: model A | model B | …, each with
    its title in a band above it (`title_band`), not over the picture.

    The result is exactly as wide as the renders put together; a thin line is drawn over each seam.
    """
    import numpy as np

    renders = [title_band(draw_detections(image, dets), title) for title, dets in panels]
    out = np.hstack(renders) if renders else image.copy()
    x = 0
    for r in renders[:-1]:
        x += r.shape[1]
        out[:, max(x - 1, 0) : x + 1] = 255
    return out
