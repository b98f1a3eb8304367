"""A model's boxes picture by picture: COCO rows (`[image_id, x, y, w, h, score, category_id]`, as
`accuracy.detections_to_coco` makes them) limited to the classes and images `accuracy.evaluate` scores,
turned into `Detection`s per picture, and how many boxes each picture holds. The error types (`tide`)
and the duplicate audit (`duplicates`) both read a model's boxes this way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.compare.labels import GroundTruth
from detect_cli.errors import LabelsError
from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np


def rounded(d: dict[str, Any]) -> dict[str, Any]:
    """`d` for JSON: floats to 4 decimals, NaN (not measured) as None."""
    return {
        k: round(v, 4) if isinstance(v, float) and v == v else (None if v != v else v) for k, v in d.items()
    }


def scope(
    gt: GroundTruth, class_names: Sequence[str] | None, image_ids: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """The categories and images `accuracy.evaluate` scores for the same arguments."""
    wanted = None if class_names is None else {n.casefold() for n in class_names}
    cat_ids = sorted(c for c, n in gt.categories.items() if wanted is None or n.casefold() in wanted)
    img_ids = sorted(gt.image_ids.values()) if image_ids is None else sorted(image_ids)
    if not cat_ids:
        raise LabelsError(f"the labels ({gt.path}) share no class names with the models")
    return cat_ids, img_ids


def in_scope(predictions: np.ndarray, cat_ids: Sequence[int], img_ids: Sequence[int]) -> np.ndarray:
    """The rows `accuracy.evaluate` scores: those of the scored classes and images."""
    import numpy as np

    rows = np.asarray(predictions, dtype=np.float64).reshape(-1, 7)
    return rows[np.isin(rows[:, 6], cat_ids) & np.isin(rows[:, 0], img_ids)]


def xyxy(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    return (x, y, x + max(w, 0.0), y + max(h, 0.0))  # as pycocotools: x2 = x + w


def rows_to_pictures(
    predictions: np.ndarray,
    categories: Mapping[int, str],
    image_ids: Iterable[int],
    conf: float = 0.0,
    max_det: int | None = None,
) -> dict[int, tuple[Detection, ...]]:
    """COCO rows as `Detection`s per image id (every id in `image_ids`, empty where it has no box), the
    rows scored >= `conf`, each picture in the rows' order. With `max_det`, only each picture's
    `max_det` most confident boxes per class are kept first, as COCOeval keeps them (`maxDets`).
    `class_id` is the category id and `class_name` its name."""
    import numpy as np

    by_image: dict[int, list[Detection]] = {int(i): [] for i in image_ids}
    for row in np.asarray(predictions, dtype=np.float64).reshape(-1, 7):
        img, x, y, w, h, score, cat = row.tolist()
        if int(img) in by_image:
            by_image[int(img)].append(
                Detection(int(cat), categories.get(int(cat), str(int(cat))), score, xyxy(x, y, w, h))
            )
    out = {}
    for img, dets in by_image.items():
        if max_det is not None:  # the first max_det of each class in score order (stable, as COCOeval)
            seen: Counter[int] = Counter()
            kept = set()
            for i in sorted(range(len(dets)), key=lambda i: -dets[i].confidence):
                seen[dets[i].class_id] += 1
                if seen[dets[i].class_id] <= max_det:
                    kept.add(i)
            dets = [d for i, d in enumerate(dets) if i in kept]
        out[img] = tuple(d for d in dets if d.confidence >= conf)
    return out


# --- boxes per picture, with or without labels ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoxCounts:
    """Boxes scored >= `conf` per picture over `pictures` pictures: their total, the pictures with
    none, and the mean, median and largest number per picture (NaN / 0 with no picture)."""

    conf: float
    pictures: int
    boxes: int
    empty: int
    mean: float
    median: float
    max: int

    def to_dict(self) -> dict[str, Any]:
        return rounded(asdict(self))


def boxes_per_picture(pictures: Iterable[Sequence[Detection]], conf: float) -> BoxCounts:
    """`BoxCounts` over `pictures` (one sequence of detections per picture, empty ones included)."""
    import numpy as np

    n = np.array([sum(d.confidence >= conf for d in dets) for dets in pictures], dtype=np.int64)
    if not len(n):
        return BoxCounts(conf, 0, 0, 0, float("nan"), float("nan"), 0)
    return BoxCounts(
        conf, len(n), int(n.sum()), int((n == 0).sum()), float(n.mean()), float(np.median(n)), int(n.max())
    )
