"""Accuracy against labels: detections as COCO results, scored with pycocotools' COCOeval (imported when
used), mAP over the whole precision-recall curve and precision/recall at the run's confidence, as an
`Accuracy` per model (report.json's `models[].accuracy`)."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.compare.labels import GroundTruth
from detect_cli.errors import LabelsError
from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np

EVAL_CONF = 0.001  # as `yolo val`: mAP needs the whole precision-recall curve, so keep nearly every box


@dataclass(frozen=True, slots=True)
class ClassAccuracy:
    class_name: str
    instances: int
    map50_95: float | None
    map50: float | None
    precision: float | None
    recall: float | None


@dataclass(frozen=True, slots=True)
class Accuracy:
    """COCO-style scores against the labels. mAP uses every box down to `eval_conf` (as `yolo val`);
    precision and recall are at IoU 0.5 for the boxes at or above `conf`, the threshold the user runs
    with. Overall values are means over the classes that have labels (as ultralytics reports them)."""

    map50_95: float
    map50: float
    precision: float
    recall: float
    conf: float
    eval_conf: float
    images: int
    instances: int
    per_class: tuple[ClassAccuracy, ...]


def detections_to_coco(
    detections: Sequence[Detection], image_id: int, category_by_name: Mapping[str, int]
) -> np.ndarray:
    """Rows [image_id, x, y, w, h, score, category_id] (pycocotools' array form) for known classes."""
    import numpy as np

    rows = [
        (image_id, x1, y1, x2 - x1, y2 - y1, d.confidence, category_by_name[d.class_name.casefold()])
        for d in detections
        if d.class_name.casefold() in category_by_name
        for x1, y1, x2, y2 in [d.xyxy]
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def coco_eval(
    gt: GroundTruth,
    predictions: np.ndarray,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    max_det: int = 300,
) -> Any:
    """pycocotools' COCOeval for these predictions, after `evaluate()` (its per-picture matches in
    `evalImgs`), before `accumulate()`: the settings every accuracy figure shares. Only label classes
    whose names are in `class_names` are scored (all of them when None), on `image_ids` (all labelled
    images when None); up to `max_det` boxes per picture and class."""
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    wanted = None if class_names is None else {n.casefold() for n in class_names}
    cat_ids = sorted(c for c, n in gt.categories.items() if wanted is None or n.casefold() in wanted)
    img_ids = sorted(gt.image_ids.values()) if image_ids is None else sorted(image_ids)
    if not cat_ids:
        raise LabelsError(f"the labels ({gt.path}) share no class names with the models")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = gt.coco
        coco_gt.createIndex()
        preds = predictions[np.isin(predictions[:, 6], cat_ids) & np.isin(predictions[:, 0], img_ids)]
        coco_dt = coco_gt.loadRes(preds) if len(preds) else COCO()
        if not len(preds):
            coco_dt.dataset = {
                "images": gt.coco["images"],
                "categories": gt.coco["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.catIds = cat_ids
        ev.params.imgIds = img_ids
        ev.params.maxDets = [1, 10, max_det]  # score every box the model returns, as `yolo val` does
        ev.evaluate()
    return ev


def evaluate(
    gt: GroundTruth,
    predictions: np.ndarray,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    conf: float = 0.25,
    eval_conf: float = EVAL_CONF,
    max_det: int = 300,
) -> Accuracy:
    """Score COCO-format predictions (rows from `detections_to_coco`) with pycocotools' COCOeval.

    Only label classes whose names are in `class_names` are scored (all of them when None), on
    `image_ids` (all labelled images when None). Precision and recall come from COCOeval's own
    per-image matching at IoU 0.5, counting the boxes scored at or above `conf`.
    """
    import numpy as np

    ev = coco_eval(gt, predictions, class_names, image_ids, max_det)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ev.accumulate()
    cat_ids = list(ev.params.catIds)
    img_ids = list(ev.params.imgIds)
    precision = ev.eval["precision"][:, :, :, 0, -1]  # [IoU, recall, class] at area "all", max_det
    tp, fp, npos = _counts_at_conf(ev, conf)
    in_scope = set(img_ids)
    instances = Counter(
        a["category_id"] for a in gt.coco["annotations"] if not a.get("iscrowd") and a["image_id"] in in_scope
    )
    rows = []
    for k, cat in enumerate(cat_ids):
        p_k = precision[:, :, k]
        has_gt = npos[cat] > 0
        rows.append(
            ClassAccuracy(
                gt.categories[cat],
                instances[cat],
                float(p_k[p_k > -1].mean()) if has_gt and (p_k > -1).any() else None,
                float(p_k[0][p_k[0] > -1].mean()) if has_gt and (p_k[0] > -1).any() else None,
                (tp[cat] / (tp[cat] + fp[cat]) if tp[cat] + fp[cat] else 0.0) if has_gt else None,
                tp[cat] / npos[cat] if has_gt else None,
            )
        )
    scored = [r for r in rows if r.instances]

    def mean(values: list[float | None]) -> float:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else 0.0

    return Accuracy(
        map50_95=mean([r.map50_95 for r in scored]),
        map50=mean([r.map50 for r in scored]),
        precision=mean([r.precision for r in scored]),
        recall=mean([r.recall for r in scored]),
        conf=conf,
        eval_conf=eval_conf,
        images=len(img_ids),
        instances=sum(instances[c] for c in cat_ids),
        per_class=tuple(rows),
    )


def _counts_at_conf(ev: Any, conf: float) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """True and false positives at IoU 0.5 among boxes scored ≥ conf, and labelled objects, per class."""
    import numpy as np

    tp: Counter[int] = Counter()
    fp: Counter[int] = Counter()
    npos: Counter[int] = Counter()
    all_area = ev.params.areaRng[0]
    for e in ev.evalImgs:
        if e is None or e["aRng"] != all_area:
            continue
        cat = e["category_id"]
        npos[cat] += int((~np.asarray(e["gtIgnore"], dtype=bool)).sum())
        scores = np.asarray(e["dtScores"])
        if not len(scores):
            continue
        keep = (scores >= conf) & ~e["dtIgnore"][0].astype(bool)
        hit = e["dtMatches"][0] > 0
        tp[cat] += int((keep & hit).sum())
        fp[cat] += int((keep & ~hit).sum())
    return tp, fp, npos
