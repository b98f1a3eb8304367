"""What a model's errors are: its false positives and misses split into the TIDE categories (Bolya et
al., "TIDE: A General Toolbox for Identifying Object Detection Errors", ECCV 2020). Every box pairing goes
through `geometry` (its IoU and its one matcher), and the true and false positives are COCOeval's own
counts (`accuracy._counts_at_conf`).

Detections come in as `accuracy.evaluate` takes them: COCO rows `[image_id, x, y, w, h, score,
category_id]` (`accuracy.detections_to_coco`), read per picture through `boxes`. The duplicate audit of
NMS-free models is in `duplicates`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from detect_cli import geometry
from detect_cli.compare.boxes import in_scope, rounded, rows_to_pictures, scope, xyxy
from detect_cli.compare.labels import GroundTruth
from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np

T_F = 0.5  # TIDE's foreground threshold: a box at IoU >= t_f with a label of its class is in the right place
T_B = 0.1  # TIDE's background threshold: below it with every label, a box is on background


@dataclass(frozen=True, slots=True)
class ErrorBreakdown:
    """One model's boxes at or above `conf` against the labels, every false positive in exactly one
    TIDE category and every unmatched label either missed or explained by an error.

    Matching (the true positives) is COCOeval's at IoU `t_f`, per picture and class: boxes in order of
    confidence (ties in the order given), each takes the unmatched label of its class it overlaps most
    (IoU >= t_f), through `geometry.match(lead="a")`; a box that takes none but covers a crowd label of
    its class (IoU against a crowd = intersection / the box's area, >= t_f) is `ignored`, neither true
    nor false, as in COCOeval. So `true_positives` and `false_positives` are COCOeval's own counts at
    IoU 0.5 for the boxes scored >= conf (`accuracy._counts_at_conf`), and `labels` its positives.

    Each false positive gets the first category that fits, in TIDE's order (its code tests localization
    before classification), IoU taken with the picture's labels of scored classes (crowds aside):
    1. localization: its highest IoU with a label of its class is in [t_b, t_f);
    2. classification: its highest IoU with a label of another class is >= t_f;
    3. duplicate: it has IoU >= t_f with a label of its class, which a box before it in the matching
       order (more confident, or as confident and given first) already took;
    4. background: its IoU with every label is < t_b (or the picture has no labels);
    5. both: what is left, which is exactly: wrong class at t_b <= IoU < t_f, and nothing above.

    A localization or classification error points at one label: the one with that highest IoU (the
    first such label on a tie). Following TIDE, an unmatched label that such an error points at is
    `explained` (fixing that box would find it); the other unmatched labels are `missed` (no box came
    near enough). `confusions` counts the classification errors by (the box's class, the class of the
    label it lies on), most frequent first. Identities (`check` asserts them):
      classification + localization + both + duplicate + background == false_positives
      true_positives + false_positives + ignored == detections
      true_positives + missed + explained == labels
    """

    conf: float
    t_f: float
    t_b: float
    images: int
    labels: int
    detections: int
    true_positives: int
    false_positives: int
    classification: int
    localization: int
    both: int
    duplicate: int
    background: int
    ignored: int
    missed: int
    explained: int
    confusions: tuple[tuple[str, str, int], ...] = ()

    def check(self) -> None:
        """The three identities in the class docstring; an AssertionError names the first that fails."""
        assert (
            self.classification + self.localization + self.both + self.duplicate + self.background
            == self.false_positives
        ), "false positive categories do not add up"
        assert self.true_positives + self.false_positives + self.ignored == self.detections, "boxes"
        assert self.true_positives + self.missed + self.explained == self.labels, "labels"

    def to_dict(self) -> dict[str, Any]:
        d = rounded(asdict(self))
        d["confusions"] = [{"box": b, "label": g, "count": n} for b, g, n in self.confusions]
        return d


COUNTS = (
    "labels",
    "detections",
    "true_positives",
    "false_positives",
    "classification",
    "localization",
    "both",
    "duplicate",
    "background",
    "ignored",
    "missed",
    "explained",
)


def _category(d: Detection) -> int:
    return d.class_id


def _image_errors(
    dets: Sequence[Detection],
    labels: Sequence[Detection],
    crowds: Sequence[Detection],
    t_f: float,
    t_b: float,
    counts: Counter[str],
    confusions: Counter[tuple[str, str]],
) -> None:
    """One picture's counts (keys as `COUNTS`) and its classification errors by (box class, label
    class); both are added to."""
    import numpy as np

    counts.update(detections=len(dets), labels=len(labels))
    matches = geometry.match(dets, labels, t_f, same_class=_category, lead="a")
    used = {m.b for m in matches}
    matched_dets = {m.a for m in matches}
    counts["true_positives"] += len(matches)
    if not dets:
        counts["missed"] += len(labels)
        return
    boxes = np.array([d.xyxy for d in dets])
    cls = np.array([d.class_id for d in dets])
    if crowds:
        crowd_iou = geometry.box_iou(boxes, np.array([c.xyxy for c in crowds]), np.ones(len(crowds), bool))
        crowd_hit = (
            (crowd_iou >= t_f) & (cls[:, None] == np.array([c.class_id for c in crowds])[None, :])
        ).any(1)
    else:
        crowd_hit = np.zeros(len(dets), bool)
    if labels:
        iou = geometry.box_iou(boxes, np.array([g.xyxy for g in labels]))
        same = cls[:, None] == np.array([g.class_id for g in labels])[None, :]
    else:
        iou = np.zeros((len(dets), 0))
        same = np.zeros((len(dets), 0), bool)
    same_iou, other_iou = np.where(same, iou, 0.0), np.where(same, 0.0, iou)
    explained: set[int] = set()
    for i in range(len(dets)):
        if i in matched_dets:
            continue
        if crowd_hit[i]:
            counts["ignored"] += 1
            continue
        counts["false_positives"] += 1
        if not labels:
            counts["background"] += 1
            continue
        j = int(same_iou[i].argmax())
        if t_b <= same_iou[i, j] < t_f:
            counts["localization"] += 1
            explained.add(j)
            continue
        j = int(other_iou[i].argmax())
        if other_iou[i, j] >= t_f:
            counts["classification"] += 1
            confusions[dets[i].class_name, labels[j].class_name] += 1
            explained.add(j)
            continue
        if same_iou[i].max() >= t_f:  # every such label is matched, or the matcher would have taken it
            counts["duplicate"] += 1
        elif iou[i].max() < t_b:
            counts["background"] += 1
        else:
            counts["both"] += 1
    explained -= used
    counts["explained"] += len(explained)
    counts["missed"] += len(labels) - len(used) - len(explained)


def error_breakdown(
    gt: GroundTruth,
    predictions: np.ndarray,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    conf: float = 0.25,
    max_det: int = 300,
    t_f: float = T_F,
    t_b: float = T_B,
) -> ErrorBreakdown:
    """TIDE's error categories for COCO-format predictions (rows from `detections_to_coco`), scoring
    the classes and images `accuracy.evaluate` scores for the same arguments and the boxes at or above
    `conf` (see `ErrorBreakdown` for the definitions). Labels of classes not scored are left out: a
    box on one of them is judged as if it were not there."""
    cat_ids, img_ids = scope(gt, class_names, image_ids)
    scored = set(cat_ids)
    pictures = rows_to_pictures(
        in_scope(predictions, cat_ids, img_ids), gt.categories, img_ids, conf, max_det
    )
    labels: defaultdict[int, list[Detection]] = defaultdict(list)
    crowds: defaultdict[int, list[Detection]] = defaultdict(list)
    for a in gt.coco["annotations"]:
        if a["image_id"] not in pictures or a["category_id"] not in scored:
            continue
        label = Detection(a["category_id"], gt.categories[a["category_id"]], 1.0, xyxy(*a["bbox"]))
        (crowds if a.get("iscrowd") else labels)[a["image_id"]].append(label)
    totals: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    for img, dets in pictures.items():
        _image_errors(dets, labels[img], crowds[img], t_f, t_b, totals, confusions)
    breakdown = ErrorBreakdown(
        conf=conf,
        t_f=t_f,
        t_b=t_b,
        images=len(img_ids),
        **{k: totals[k] for k in COUNTS},
        confusions=tuple((box, label, n) for (box, label), n in confusions.most_common()),
    )
    breakdown.check()
    return breakdown
