"""What ultralytics' predictor does to a network's output, in NumPy: RT-DETR's rows kept above `conf`
and scaled to the picture, YOLO's best class per anchor and class-wise greedy NMS (its
`non_max_suppression`) mapped back through the letterbox, an end-to-end YOLO head's rows (YOLO26)
without NMS, and the class-wise NMS `--nms` applies to an NMS-free model's boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detect_cli.models import PredictOptions
from detect_cli.runtime.preprocess import Fit

if TYPE_CHECKING:
    import numpy as np

MAX_WH = 7680  # ultralytics' per-class box offset for class-wise NMS in one call
MAX_NMS = 30000  # ultralytics' cap on boxes entering NMS


def xywh2xyxy(boxes: np.ndarray) -> np.ndarray:
    import numpy as np

    half = boxes[..., 2:] / 2
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None) -> np.ndarray:
    """Greedy NMS as torchvision's: most confident first, a box goes when its IoU with a kept one is
    above `iou`. Returns the kept indices, most confident first; with `limit`, the first `limit` of
    them, found without going further (each kept box depends only on those kept before it)."""
    import numpy as np

    ids = np.argsort(-scores, kind="stable")
    # Coordinates in score order, as contiguous arrays: each step then compares the first box with
    # a view of the rest, and copies only when it suppressed something.
    x1, y1, x2, y2 = boxes[ids].T.copy()
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while ids.size and (limit is None or len(keep) < limit):
        keep.append(ids[0])
        w = np.minimum(x2[1:], x2[0])
        w -= np.maximum(x1[1:], x1[0])
        np.maximum(w, 0, out=w)
        h = np.minimum(y2[1:], y2[0])
        h -= np.maximum(y1[1:], y1[0])
        np.maximum(h, 0, out=h)
        w *= h  # intersection
        union = areas[1:] + areas[0]
        union -= w
        gone = w / union > iou
        ids, x1, y1, x2, y2, areas = ids[1:], x1[1:], y1[1:], x2[1:], y2[1:], areas[1:]
        if gone.any():
            stay = ~gone
            ids, x1, y1, x2, y2, areas = ids[stay], x1[stay], y1[stay], x2[stay], y2[stay], areas[stay]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Class-wise NMS in one call: boxes of different classes are moved apart so they never overlap."""
    if not len(boxes):
        return classes[:0].astype("int64")
    offset = classes[:, None].astype(boxes.dtype) * (float(boxes.max()) + 1)
    return nms(boxes + offset, scores, iou)


def unletterbox(boxes: np.ndarray, fit: Fit, shape: tuple[int, int]) -> np.ndarray:
    """Boxes in input pixels back to the picture's (ultralytics' scale_boxes), clipped to it."""
    import numpy as np

    h, w = shape
    out = boxes.copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - fit.pad_x) / fit.gain_x
    out[:, [1, 3]] = (out[:, [1, 3]] - fit.pad_y) / fit.gain_y
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
    return out


@dataclass(frozen=True, slots=True)
class Decoded:
    """Rows kept for one picture: xyxy in its pixels, score, class id."""

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def _class_filter(classes: np.ndarray, wanted: Sequence[int] | None) -> np.ndarray:
    import numpy as np

    if wanted is None:
        return np.ones(len(classes), bool)
    return np.isin(classes, np.asarray(list(wanted), dtype=classes.dtype))


def decode_rtdetr(output: np.ndarray, options: PredictOptions, shape: tuple[int, int]) -> Decoded:
    """RTDETRPredictor.postprocess on one picture's (queries, 6) rows."""
    import numpy as np

    h, w = shape
    keep = (output[:, 4] > options.conf) & _class_filter(output[:, 5], options.classes)
    rows = output[keep][: options.max_det]
    boxes = xywh2xyxy(rows[:, :4]) * np.asarray([w, h, w, h], dtype=rows.dtype)
    return Decoded(boxes, rows[:, 4], rows[:, 5])


def decode_end2end(output: np.ndarray, options: PredictOptions, fit: Fit, shape: tuple[int, int]) -> Decoded:
    """An end-to-end YOLO head's (300, 6) rows (xyxy in input pixels, score, class), as ultralytics'
    end-to-end branch of `non_max_suppression` then `scale_boxes`."""
    keep = (output[:, 4] > options.conf) & _class_filter(output[:, 5], options.classes)
    rows = output[keep][: options.max_det]
    return Decoded(unletterbox(rows[:, :4], fit, shape), rows[:, 4], rows[:, 5])


def decode_yolo(output: np.ndarray, options: PredictOptions, fit: Fit, shape: tuple[int, int]) -> Decoded:
    """ultralytics' `non_max_suppression` (best class per anchor, class-wise) then `scale_boxes` on one
    picture's (4 + classes, anchors) output."""
    import numpy as np

    scores_all = output[4:]
    candidates = scores_all.max(0) > options.conf
    x = output[:, candidates].T  # (n, 4 + classes)
    boxes = xywh2xyxy(x[:, :4])
    classes = x[:, 4:].argmax(1)
    scores = x[np.arange(len(x)), 4 + classes]
    keep = (scores > options.conf) & _class_filter(classes, options.classes)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if len(scores) > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        boxes, scores, classes = boxes[top], scores[top], classes[top]
    kept = nms(boxes + classes[:, None].astype(boxes.dtype) * MAX_WH, scores, options.iou, options.max_det)
    return Decoded(unletterbox(boxes[kept], fit, shape), scores[kept], classes[kept].astype(np.float32))
