"""Box geometry shared by `detect compare` (agreement between models) and the backends' parity check
(an exported model against PyTorch): one IoU, one greedy one-to-one matcher, and clipping to the image.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np

MATCH_IOU = 0.5


def box_iou(a: np.ndarray, b: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU of every box in a (N,4 xyxy) with every box in b (M,4): an N x M matrix (0 where the union is
    empty). Where `crowd` (M booleans) marks a box of b as a crowd region, the union is the area of the
    box of a alone, as COCO scores a detection against a crowd label (pycocotools' `iscrowd`)."""
    import numpy as np

    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    union = area_a[:, None] + area_b[None, :] - inter
    if crowd is not None:
        union = np.where(np.asarray(crowd, dtype=bool)[None, :], area_a[:, None], union)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True, slots=True)
class Match:
    """Box `a` (an index into the first sequence) paired with box `b` (into the second) at `iou`."""

    a: int
    b: int
    iou: float


def class_name_key(d: Detection) -> Hashable:
    """Same class = same name, case aside (models trained apart number their classes differently)."""
    return d.class_name.casefold()


def match(
    a: Sequence[Detection],
    b: Sequence[Detection],
    iou_threshold: float = MATCH_IOU,
    *,
    same_class: Callable[[Detection], Hashable] = class_name_key,
    lead: Literal["both", "a"] = "both",
) -> list[Match]:
    """Pair boxes of the same class with IoU ≥ `iou_threshold`, one-to-one, greedily, the most confident
    first. Candidate pairs are taken in order of

    - `lead="both"`: the pair's combined confidence, then IoU: symmetric, so the result does not depend
      on which side is `a` (two models compared as equals);
    - `lead="a"`: `a`'s confidence (ties in `a`'s order), then IoU: `a` is the reference, and each of its
      boxes in turn takes the free box of `b` it overlaps most.

    Returns the matches in the order they were made.
    """
    import numpy as np

    # (sort key, i, j, iou); the key holds i and j, so no two are equal and the order is fully defined
    candidates: list[tuple[tuple[float, ...], int, int, float]] = []
    if a and b:
        iou = box_iou(np.array([d.xyxy for d in a]), np.array([d.xyxy for d in b]))
        codes: dict[Hashable, int] = {}
        class_a = np.array([codes.setdefault(same_class(d), len(codes)) for d in a])
        class_b = np.array([codes.setdefault(same_class(d), len(codes)) for d in b])
        same = class_a[:, None] == class_b[None, :]
        for ii, jj in zip(*np.nonzero(same & (iou >= iou_threshold)), strict=True):
            i, j, v = int(ii), int(jj), float(iou[ii, jj])
            if lead == "both":
                key = (a[i].confidence + b[j].confidence, v, i, j)
            else:  # -i: of equally confident reference boxes, the earlier one goes first
                key = (a[i].confidence, -i, v, j)
            candidates.append((key, i, j, v))
    candidates.sort(reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    matches = []
    for _, i, j, v in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matches.append(Match(i, j, v))
    return matches


def clip_detections(detections: Sequence[Detection], width: int, height: int) -> tuple[Detection, ...]:
    """Boxes clipped to the image. ultralytics' RT-DETR predictor leaves boxes that overhang the image
    unclipped while YOLO's is clipped (and `val` clips both); clipping puts every model on one footing."""
    return tuple(
        replace(
            d,
            xyxy=(
                min(max(x1, 0.0), width),
                min(max(y1, 0.0), height),
                min(max(x2, 0.0), width),
                min(max(y2, 0.0), height),
            ),
        )
        for d in detections
        for x1, y1, x2, y2 in [d.xyxy]
    )
