from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence

import numpy as np
import pytest

from detect_cli.compare.accuracy import _counts_at_conf
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.tide import ErrorBreakdown, error_breakdown

CATEGORIES = {1: "cat", 2: "dog", 3: "bird"}
BOX = (10.0, 10.0, 50.0, 50.0)  # 40 x 40


def shifted(box: tuple[float, float, float, float], dx: float) -> tuple[float, float, float, float]:
    """The box moved dx right: same size, IoU (40-dx)/(40+dx) for a 40-wide box (dx 22: 0.29)."""
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def ground_truth(labels: dict[int, Sequence[tuple]], categories: dict[int, str] = CATEGORIES) -> GroundTruth:
    """In-memory COCO labels: image id -> [(category id, xyxy[, iscrowd])]."""
    annotations = []
    for img, rows in labels.items():
        for cat, (x1, y1, x2, y2), *crowd in rows:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": img,
                    "category_id": cat,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(bool(crowd and crowd[0])),
                }
            )
    coco = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 640} for i in labels],
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in categories.items()],
    }
    return GroundTruth("labels.json", "coco", dict(categories), coco, {f"{i}.jpg": i for i in labels})


def rows(dets: dict[int, Sequence[tuple]]) -> np.ndarray:
    """COCO result rows from image id -> [(category id, score, xyxy)]."""
    out = [
        (img, x1, y1, x2 - x1, y2 - y1, score, cat)
        for img, ds in dets.items()
        for cat, score, (x1, y1, x2, y2) in ds
    ]
    return np.array(out, dtype=float).reshape(-1, 7)


def coco_counts(gt: GroundTruth, preds: np.ndarray, conf: float) -> tuple[int, int, int]:
    """(TP, FP, labelled objects) at IoU 0.5 for boxes >= conf, straight from pycocotools' COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt.coco
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(preds), "bbox")
        ev.params.imgIds = sorted(gt.image_ids.values())
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
    tp, fp, npos = _counts_at_conf(ev, conf)
    return sum(tp.values()), sum(fp.values()), sum(npos.values())


# --- TIDE categories, one picture each ------------------------------------------------------------

ZERO = {
    "classification": 0,
    "localization": 0,
    "both": 0,
    "duplicate": 0,
    "background": 0,
    "missed": 0,
    "explained": 0,
}

CASES = {
    # a dog box exactly on a cat: right place, wrong class; the cat is explained by it, not missed
    "classification": ([(1, BOX)], [(2, 0.9, BOX)], {"classification": 1, "explained": 1}, 0),
    # a cat box at IoU 0.29 on the cat: right class, poorly placed
    "localization": ([(1, BOX)], [(1, 0.9, shifted(BOX, 22))], {"localization": 1, "explained": 1}, 0),
    # a dog box at IoU 0.29 on the cat: both wrong; TIDE lets no "both" error explain a label
    "both": ([(1, BOX)], [(2, 0.9, shifted(BOX, 22))], {"both": 1, "missed": 1}, 0),
    # two cat boxes on one cat: the more confident one matches it (even at lower IoU), the other is a dupe
    "duplicate": ([(1, BOX)], [(1, 0.9, shifted(BOX, 8)), (1, 0.8, BOX)], {"duplicate": 1}, 1),
    # a box where there is nothing, in a picture with no labels
    "background": ([], [(1, 0.9, BOX)], {"background": 1}, 0),
    # a label no box comes near
    "missed": ([(1, BOX)], [(1, 0.9, (200.0, 200.0, 240.0, 240.0))], {"background": 1, "missed": 1}, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_tide_category_on_its_own_picture(case: str) -> None:
    labels, dets, expected, tp = CASES[case]
    gt = ground_truth({1: labels})
    b = error_breakdown(gt, rows({1: dets}), conf=0.25)
    got = {k: getattr(b, k) for k in ZERO}
    assert got == ZERO | expected
    assert (b.true_positives, b.false_positives, b.labels, b.detections) == (
        tp,
        len(dets) - tp,
        len(labels),
        len(dets),
    )
    assert (b.true_positives, b.false_positives, b.labels) == coco_counts(gt, rows({1: dets}), 0.25)


def test_all_pictures_together_add_up_and_json() -> None:
    gt = ground_truth({i: CASES[c][0] for i, c in enumerate(CASES, 1)})
    preds = rows({i: CASES[c][1] for i, c in enumerate(CASES, 1)})
    b = error_breakdown(gt, preds)
    assert {k: getattr(b, k) for k in ZERO} == {
        "classification": 1,
        "localization": 1,
        "both": 1,
        "duplicate": 1,
        "background": 2,
        "missed": 2,
        "explained": 2,
    }
    assert (b.images, b.labels, b.detections, b.true_positives, b.false_positives) == (6, 5, 7, 1, 6)
    assert b.confusions == (("dog", "cat", 1),)
    written = json.loads(json.dumps(b.to_dict()))
    assert written["false_positives"] == 6
    assert written["confusions"] == [{"box": "dog", "label": "cat", "count": 1}]


def test_localization_is_tested_before_classification_and_boxes_below_conf_are_left_out() -> None:
    # A cat box at IoU 0.29 with a cat and exactly on a dog: TIDE's code tests localization first.
    gt = ground_truth({1: [(1, BOX), (2, shifted(BOX, 22))]})
    preds = rows({1: [(1, 0.9, shifted(BOX, 22)), (1, 0.1, BOX)]})
    b = error_breakdown(gt, preds, conf=0.25)
    assert (b.localization, b.classification, b.detections, b.explained, b.missed) == (1, 0, 1, 1, 1)
    assert error_breakdown(gt, preds, conf=0.05).true_positives == 1  # the cat, once the low box counts


def test_an_error_on_a_label_already_found_explains_nothing() -> None:
    # The cat is found; a second cat box at IoU 0.29 is a localization error, but there is no miss to
    # explain, and a dog box on it is a classification error, likewise.
    gt = ground_truth({1: [(1, BOX)]})
    preds = rows({1: [(1, 0.9, BOX), (1, 0.8, shifted(BOX, 22)), (2, 0.7, BOX)]})
    b = error_breakdown(gt, preds)
    assert (b.true_positives, b.localization, b.classification, b.explained, b.missed) == (1, 1, 1, 0, 0)
    assert b.confusions == (("dog", "cat", 1),)


def test_a_box_on_a_crowd_label_is_neither_true_nor_false_as_in_cocoeval() -> None:
    gt = ground_truth({1: [(1, (0.0, 0.0, 100.0, 100.0), 1), (1, (200.0, 200.0, 240.0, 240.0))]})
    preds = rows({1: [(1, 0.9, BOX), (1, 0.8, (200.0, 200.0, 240.0, 240.0)), (2, 0.7, BOX)]})
    b = error_breakdown(gt, preds)
    assert (b.ignored, b.true_positives, b.false_positives, b.background, b.labels) == (1, 1, 1, 1, 1)
    assert (b.true_positives, b.false_positives, b.labels) == coco_counts(gt, preds, 0.25)


def _random_case(seed: int, images: int = 40) -> tuple[GroundTruth, np.ndarray]:
    """Labels and detections of every kind: near and far copies of labels, wrong classes, several boxes
    on one label, crowds, boxes on nothing, low scores."""
    rng = np.random.default_rng(seed)
    labels: dict[int, list[tuple]] = {}
    dets: dict[int, list[tuple]] = {}
    for img in range(1, images + 1):
        labels[img], dets[img] = [], []
        for _ in range(rng.integers(0, 7)):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(10, 120, 2)
            box = (x, y, x + w, y + h)
            labels[img].append((int(rng.integers(1, 4)), box, int(rng.random() < 0.08)))
            for _ in range(rng.integers(0, 4)):  # 0-3 boxes per label, placed and labelled at random
                j = rng.normal(0, rng.choice([0.05, 0.2, 0.5]), 4) * [w, h, w, h]
                x1, y1, x2, y2 = box[0] + j[0], box[1] + j[1], box[2] + j[2], box[3] + j[3]
                if x2 > x1 and y2 > y1:
                    cat = labels[img][-1][0] if rng.random() < 0.7 else int(rng.integers(1, 4))
                    dets[img].append((cat, float(rng.random()), (x1, y1, x2, y2)))
        for _ in range(rng.integers(0, 4)):  # boxes on nothing in particular
            x, y = rng.uniform(0, 560, 2)
            dets[img].append((int(rng.integers(1, 4)), float(rng.random()), (x, y, x + 60, y + 60)))
    return ground_truth(labels), rows(dets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_case_adds_up_and_agrees_with_cocoeval(seed: int) -> None:
    gt, preds = _random_case(seed)
    for conf in (0.0, 0.25, 0.6):
        b = error_breakdown(gt, preds, conf=conf)
        b.check()  # the three identities of ErrorBreakdown's docstring
        assert (b.true_positives, b.false_positives, b.labels) == coco_counts(gt, preds, conf)
        assert b.detections == int((preds[:, 5] >= conf).sum())
        assert min(b.classification, b.localization, b.both, b.duplicate, b.background, b.missed) > 0
        assert b.ignored > 0 or conf > 0  # the crowds catch some boxes
        assert sum(n for _, _, n in b.confusions) == b.classification
        assert all(box != label for box, label, _ in b.confusions)


def test_only_scored_classes_count() -> None:
    gt = ground_truth({1: [(1, BOX), (3, (200.0, 200.0, 240.0, 240.0))]})
    preds = rows({1: [(2, 0.9, BOX), (3, 0.9, (200.0, 200.0, 240.0, 240.0))]})
    b = error_breakdown(gt, preds, class_names=["cat", "dog"])  # bird is not scored: its label and box go
    assert (b.labels, b.detections, b.classification, b.explained) == (1, 1, 1, 1)


def test_error_breakdown_fields_are_what_to_dict_writes() -> None:
    b = error_breakdown(ground_truth({1: [(1, BOX)]}), rows({1: [(1, 0.9, BOX)]}))
    assert set(b.to_dict()) == set(ErrorBreakdown.__dataclass_fields__)  # report.json has every field
    assert (b.to_dict()["true_positives"], b.to_dict()["false_positives"]) == (1, 0)
