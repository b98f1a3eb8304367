"""The explanation picture: RT-DETR's sampling points, its encoder attention and YOLO's activation,
side by side.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from detect_cli.render import draw_detections, draw_title
from detect_cli.results import RANDOM_WEIGHTS

if TYPE_CHECKING:
    import numpy as np
from detect_cli.explain.results import ExplainedDetection, ImageExplanation


def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A heat map (any range) in JET colours, blended over the image."""
    import cv2
    import numpy as np

    span = float(heat.max() - heat.min())
    norm = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colour = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.45, colour, 0.55, 0)


def _note(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    scale = max(image.shape[1] / 900, 0.4)
    y = image.shape[0] // 2
    cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return image


def _sampling_panel(image: np.ndarray, explained: Sequence[ExplainedDetection]) -> np.ndarray:
    """Boxes, and each box's sampling points: radius grows with weight; weakest drawn first."""
    import cv2
    from ultralytics.utils.plotting import colors

    out = draw_detections(image, [e.detection for e in explained])
    unit = max(image.shape[:2]) / 30  # radius of a point holding a whole head's weight
    h, w = image.shape[:2]
    for e in explained:
        colour = colors(e.detection.class_id, True)
        for p in sorted(e.sampling_points, key=lambda p: p.weight):
            if not (0 <= p.x < w and 0 <= p.y < h):
                continue  # outside the image: the module samples zeros there
            radius = max(1, round(unit * math.sqrt(p.weight)))
            cv2.circle(out, (round(p.x), round(p.y)), radius, colour, -1, cv2.LINE_AA)
            cv2.circle(out, (round(p.x), round(p.y)), radius, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _encoder_panel(image: np.ndarray, explained: Sequence[ExplainedDetection]) -> np.ndarray:
    """The explained detections' attention maps (each scaled to its maximum, then the maximum of all)."""
    import cv2
    import numpy as np

    if not explained:
        return image.copy()
    heat = np.max([e.heatmap / max(float(e.heatmap.max()), 1e-12) for e in explained], axis=0)
    out = draw_detections(_overlay(image, heat), [e.detection for e in explained])
    h, w = image.shape[:2]
    for e in explained:  # mark the query token's centre
        rows, cols = e.spread.grid
        row, col = e.spread.token
        centre = (round((col + 0.5) / cols * w), round((row + 0.5) / rows * h))
        cv2.drawMarker(out, centre, (255, 255, 255), cv2.MARKER_CROSS, max(w // 40, 8), 2)
    return out


def render_explanation(
    image: np.ndarray, result: ImageExplanation, objects: int = 5, random: Collection[str] = ()
) -> np.ndarray:
    """RT-DETR sampling points | RT-DETR encoder attention | YOLO activation (with YOLO's first
    `objects` boxes), side by side; the panels of a model named in `random` (random weights) say so."""
    import numpy as np

    def said(model: str) -> str:
        return f"{model} {RANDOM_WEIGHTS}" if model in random else model

    n = len(result.explained)
    shown = f"{n} of {result.detections_total}" if result.detections_total else "no detections"
    rtdetr = said(result.model)
    panels = [
        draw_title(_sampling_panel(image, result.explained), f"{rtdetr} decoder sampling ({shown})"),
        draw_title(_encoder_panel(image, result.explained), f"{rtdetr} encoder attention (AIFI)"),
    ]
    if not result.detections_total:
        panels = [_note(p, "no detections") for p in panels]
    if result.yolo is not None:
        yolo = draw_detections(_overlay(image, result.yolo.heatmap), result.yolo.detections[:objects])
        panels.append(draw_title(yolo, f"{said(result.yolo.model)} activation (EigenCAM)"))
    out = np.hstack(panels)
    for i in range(1, len(panels)):  # a white seam between panels
        x = i * image.shape[1]
        out[:, max(x - 1, 0) : x + 1] = 255
    return out
