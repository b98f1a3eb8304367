from __future__ import annotations

import json

import numpy as np
from test_compare_tide import BOX, ground_truth, rows, shifted

from detect_cli.compare.accuracy import evaluate
from detect_cli.compare.duplicates import (
    DuplicateAudit,
    audit_duplicates,
    nms_detections,
    nms_effect,
    nms_rows,
    twins,
)
from detect_cli.results import Detection


def det(name: str, conf: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection({"cat": 0, "dog": 1}[name.casefold()], name, conf, box)


# Picture 1: a cat with a planted twin (IoU 38/42 = 0.90), a second cat touching the first (IoU 0.33:
# no twin), a dog exactly on the first cat (another class: no twin). Picture 2: a twin pair of dogs,
# one written "Dog" (same class, case aside), and one below conf. Picture 3: nothing.
PICTURE_1 = [
    det("cat", 0.9, BOX),
    det("cat", 0.8, shifted(BOX, 2)),  # planted
    det("cat", 0.7, shifted(BOX, 20)),
    det("dog", 0.6, BOX),
]
PICTURE_2 = [
    det("dog", 0.5, (0.0, 0.0, 100.0, 100.0)),
    det("Dog", 0.55, (0.0, 0.0, 100.0, 90.0)),
    det("dog", 0.1, BOX),
]
PICTURES = [PICTURE_1, PICTURE_2, []]
KEPT = [[PICTURE_1[0], PICTURE_1[2], PICTURE_1[3]], [PICTURE_2[1], PICTURE_2[2]], []]


def test_twins_are_counted_exactly() -> None:
    t = twins(PICTURES, conf=0.25)
    # pairs: 3 cats -> 3, 1 dog -> 0 in picture 1; 2 dogs above conf -> 1 in picture 2
    assert (t.pictures, t.boxes, t.pairs, t.twin_pairs, t.boxes_with_twin) == (3, 6, 4, 2, 4)
    assert (t.pair_share, t.box_share) == (0.5, 4 / 6)
    assert twins(PICTURES, conf=0.25, iou=0.95).twin_pairs == 0
    assert twins([], conf=0.25).to_dict()["pair_share"] is None


def test_nms_afterwards_removes_exactly_the_planted_twins() -> None:
    assert [list(nms_detections(p, 0.7)) for p in PICTURES] == KEPT
    assert twins([nms_detections(p, 0.7) for p in PICTURES], conf=0.0).twin_pairs == 0
    # the same on COCO rows, picture by picture, classes by category id
    as_rows = rows(
        {i: [(d.class_id + 1, d.confidence, d.xyxy) for d in p] for i, p in enumerate(PICTURES, 1)}
    )
    kept = rows({i: [(d.class_id + 1, d.confidence, d.xyxy) for d in p] for i, p in enumerate(KEPT, 1)})
    np.testing.assert_array_equal(nms_rows(as_rows, 0.7), kept)


def test_nms_effect_with_planted_duplicates() -> None:
    other = (200.0, 200.0, 240.0, 240.0)
    gt = ground_truth({1: [(1, BOX), (1, other)], 2: [(2, BOX)]})
    planted = [(1, 1, 0.85, shifted(BOX, 2)), (2, 2, 0.65, shifted(BOX, 3))]  # below a TP, above a TP
    clean = [(1, 1, 0.9, BOX), (1, 1, 0.8, other), (2, 2, 0.7, BOX), (2, 1, 0.3, other)]
    all_rows = rows({1: [], 2: []} | _group(clean + planted))
    clean_rows = rows({1: [], 2: []} | _group(clean))
    effect = nms_effect(gt, all_rows, iou=0.7, conf=0.25)
    assert (effect.boxes, effect.removed) == (6, 2)
    expected = evaluate(gt, clean_rows, conf=0.25)  # pycocotools on the hand-made NMS'd set
    assert (effect.map50_95_nms, effect.precision_nms, effect.recall_nms) == (
        expected.map50_95,
        expected.precision,
        expected.recall,
    )
    before = evaluate(gt, all_rows, conf=0.25)
    assert (effect.map50_95, effect.precision) == (before.map50_95, before.precision)
    assert effect.map50_95_nms > effect.map50_95 and effect.precision_nms > effect.precision and effect.helps
    audit = audit_duplicates(gt, all_rows, iou=0.7, before=before)
    assert isinstance(audit, DuplicateAudit) and audit.nms == effect
    assert (audit.twins.twin_pairs, audit.twins.boxes) == (2, 6)
    assert json.loads(json.dumps(audit.to_dict()))["nms"]["removed"] == 2


def _group(items: list[tuple]) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = {}
    for img, cat, score, box in items:
        out.setdefault(img, []).append((cat, score, box))
    return out
