"""The duplicate audit of a model whose own output needs no NMS (RT-DETR, YOLO26): its same-class twins
(boxes of one class in one picture that overlap more than NMS would allow), and, with labels, what
class-wise NMS applied afterwards (`--nms`) would change in mAP, precision and recall. Every box pairing
goes through `geometry`; NMS is `runtime.batched_nms`, the one `--nms` runs; mAP and precision come from
`accuracy.evaluate` (pycocotools). Detections come in as COCO rows (read through `boxes`) or, without
labels, as `Detection`s per picture."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from detect_cli import geometry
from detect_cli.compare.accuracy import EVAL_CONF, Accuracy, evaluate
from detect_cli.compare.boxes import in_scope, rounded, rows_to_pictures, scope
from detect_cli.compare.labels import GroundTruth
from detect_cli.results import Detection
from detect_cli.runtime import batched_nms

if TYPE_CHECKING:
    import numpy as np

TWIN_IOU = 0.7  # same-class boxes overlapping more than this are twins (NMS at --iou 0.7 keeps one)


@dataclass(frozen=True, slots=True)
class Twins:
    """Same-class boxes that overlap in one picture, for the boxes scored >= `conf`. Over all
    pictures: `pairs` counts the pairs of boxes of the same class (by name, case aside, as
    `geometry.class_name_key`) in the same picture; `twin_pairs` those whose IoU is above `iou`;
    `boxes_with_twin` the boxes that are in at least one twin pair. `pair_share` = twin_pairs / pairs,
    `box_share` = boxes_with_twin / boxes (None when there is nothing to divide by). Class-wise NMS at
    IoU `iou` removes at least one box of every twin pair, so a model whose own output needs no NMS
    (RT-DETR, YOLO26) and shows twins here is one `--nms` would thin out."""

    conf: float
    iou: float
    pictures: int
    boxes: int
    pairs: int
    twin_pairs: int
    boxes_with_twin: int

    @property
    def pair_share(self) -> float | None:
        return self.twin_pairs / self.pairs if self.pairs else None

    @property
    def box_share(self) -> float | None:
        return self.boxes_with_twin / self.boxes if self.boxes else None

    def to_dict(self) -> dict[str, Any]:
        return rounded(asdict(self) | {"pair_share": self.pair_share, "box_share": self.box_share})


def _twins_in(dets: Sequence[Detection], iou: float) -> tuple[int, int, int]:
    """(same-class pairs, twin pairs, boxes with a twin) in one picture."""
    import numpy as np

    pairs = twin_pairs = with_twin = 0
    by_class: defaultdict[Any, list[Detection]] = defaultdict(list)
    for d in dets:
        by_class[geometry.class_name_key(d)].append(d)
    for group in by_class.values():
        n = len(group)
        pairs += n * (n - 1) // 2
        if n < 2:
            continue
        boxes = np.array([d.xyxy for d in group])
        over = np.triu(geometry.box_iou(boxes, boxes) > iou, k=1)
        twin_pairs += int(over.sum())
        with_twin += int((over | over.T).any(1).sum())
    return pairs, twin_pairs, with_twin


def twins(pictures: Iterable[Sequence[Detection]], conf: float, iou: float = TWIN_IOU) -> Twins:
    """Count `Twins` over `pictures` (one sequence of detections per picture, pictures with no box
    included), taking the boxes scored >= `conf`."""
    n_pictures = boxes = pairs = twin_pairs = with_twin = 0
    for dets in pictures:
        kept = [d for d in dets if d.confidence >= conf]
        p, t, w = _twins_in(kept, iou)
        n_pictures += 1
        boxes += len(kept)
        pairs, twin_pairs, with_twin = pairs + p, twin_pairs + t, with_twin + w
    return Twins(conf, iou, n_pictures, boxes, pairs, twin_pairs, with_twin)


def nms_detections(detections: Sequence[Detection], iou: float) -> tuple[Detection, ...]:
    """The boxes class-wise NMS at `iou` keeps (`runtime.batched_nms`, what `--nms` runs: a box goes
    when its IoU with a more confident kept box of its class is above `iou`), in their given order.
    Same class = same name, case aside."""
    import numpy as np

    if not detections:
        return ()
    codes: dict[Any, int] = {}
    classes = np.array([codes.setdefault(geometry.class_name_key(d), len(codes)) for d in detections])
    keep = batched_nms(
        np.array([d.xyxy for d in detections], dtype=np.float64),
        np.array([d.confidence for d in detections], dtype=np.float64),
        classes,
        iou,
    )
    return tuple(detections[int(k)] for k in np.sort(keep))


def nms_rows(predictions: np.ndarray, iou: float) -> np.ndarray:
    """COCO rows with class-wise NMS at `iou` applied picture by picture (`runtime.batched_nms`, as
    `nms_detections`; classes by category id), the kept rows in their given order."""
    import numpy as np

    rows = np.asarray(predictions, dtype=np.float64).reshape(-1, 7)
    keep = np.zeros(len(rows), bool)
    for img in np.unique(rows[:, 0]):
        at = np.flatnonzero(rows[:, 0] == img)
        r = rows[at]
        xyxy = np.concatenate([r[:, 1:3], r[:, 1:3] + np.clip(r[:, 3:5], 0, None)], axis=1)
        keep[at[batched_nms(xyxy, r[:, 5], r[:, 6].astype(np.int64), iou)]] = True
    return rows[keep]


@dataclass(frozen=True, slots=True)
class NmsEffect:
    """What class-wise NMS at IoU `iou`, applied afterwards to the detections a model returned
    (`nms_rows`), changes against the labels: `removed` boxes scored >= `conf` (of `boxes`), and
    mAP50-95, mAP50, precision and recall from `accuracy.evaluate` on the detections as they were and
    after NMS (mAP over every box down to the run's eval conf; precision and recall at IoU 0.5 for the
    boxes >= conf). NMS removes a box only for a more confident one of its class, so what is kept above
    `conf` is the same as NMS run on those boxes alone."""

    iou: float
    conf: float
    boxes: int
    removed: int
    map50_95: float
    map50_95_nms: float
    map50: float
    map50_nms: float
    precision: float
    precision_nms: float
    recall: float
    recall_nms: float

    @property
    def helps(self) -> bool:
        """NMS raises mAP50-95 (what the verdict ranks by) on these labels."""
        return self.map50_95_nms > self.map50_95

    def to_dict(self) -> dict[str, Any]:
        return rounded(asdict(self)) | {"helps": self.helps}


def nms_effect(
    gt: GroundTruth,
    predictions: np.ndarray,
    iou: float,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    conf: float = 0.25,
    eval_conf: float = EVAL_CONF,
    max_det: int = 300,
    before: Accuracy | None = None,
) -> NmsEffect:
    """`NmsEffect` of NMS at `iou` (the model's `--iou`) on COCO rows, scored as `accuracy.evaluate`
    scores them for the same arguments; `before`, when given, is that score on `predictions` already
    computed (the run's own accuracy), so only the NMS'd rows are scored again."""

    def score(rows: np.ndarray) -> Accuracy:
        return evaluate(gt, rows, class_names, image_ids, conf=conf, eval_conf=eval_conf, max_det=max_det)

    rows = in_scope(predictions, *scope(gt, class_names, image_ids))
    after_rows = nms_rows(rows, iou)
    a, b = before or score(rows), score(after_rows)
    above = int((rows[:, 5] >= conf).sum())
    return NmsEffect(
        iou=iou,
        conf=conf,
        boxes=above,
        removed=above - int((after_rows[:, 5] >= conf).sum()),
        map50_95=a.map50_95,
        map50_95_nms=b.map50_95,
        map50=a.map50,
        map50_nms=b.map50,
        precision=a.precision,
        precision_nms=b.precision,
        recall=a.recall,
        recall_nms=b.recall,
    )


@dataclass(frozen=True, slots=True)
class DuplicateAudit:
    """The duplicate audit of one model: its `twins`, and with labels what NMS afterwards would change
    (`nms`, None without labels)."""

    twins: Twins
    nms: NmsEffect | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"twins": self.twins.to_dict(), "nms": self.nms.to_dict() if self.nms else None}


def audit_duplicates(
    gt: GroundTruth,
    predictions: np.ndarray,
    iou: float,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    conf: float = 0.25,
    eval_conf: float = EVAL_CONF,
    max_det: int = 300,
    before: Accuracy | None = None,
    twin_iou: float = TWIN_IOU,
) -> DuplicateAudit:
    """`DuplicateAudit` from COCO rows and labels: twins over the scored pictures at `conf` and
    `twin_iou`, and `nms_effect` at `iou` (the model's `--iou`). Without labels, use
    `DuplicateAudit(twins(pictures, conf))`."""
    cat_ids, img_ids = scope(gt, class_names, image_ids)
    rows = in_scope(predictions, cat_ids, img_ids)
    pictures = rows_to_pictures(rows, gt.categories, img_ids, conf)
    return DuplicateAudit(
        twins(pictures.values(), conf, twin_iou),
        nms_effect(gt, rows, iou, class_names, image_ids, conf, eval_conf, max_det, before),
    )
