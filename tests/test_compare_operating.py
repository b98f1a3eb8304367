"""Operating points, checked against a brute-force sweep with a greedy IoU-0.5 matcher written here, and
against `accuracy.evaluate`'s precision and recall."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from stats_data import NAMES, Synthetic, make_detections, make_labels, table

from detect_cli.compare import operating
from detect_cli.compare.accuracy import evaluate
from detect_cli.compare.labels import GroundTruth


@functools.cache
def data() -> tuple[Synthetic, np.ndarray, np.ndarray]:
    d = make_labels(40)
    return d, make_detections(d, seed=2), make_detections(d, seed=3, keep=0.65, jitter=0.12)


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every [x, y, w, h] in a with every one in b."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    return inter / (a[:, None, 2:].prod(2) + b[None, :, 2:].prod(2) - inter)


def brute_force(d: Synthetic, predictions: np.ndarray, conf: float) -> tuple[float, float, float]:
    return sweep(d, predictions, (conf,))[0]


def sweep(
    d: Synthetic, predictions: np.ndarray, confs: tuple[float, ...]
) -> list[tuple[float, float, float]]:
    """P, R, F1 at each threshold, recounted from scratch: per picture and class, the boxes scored ≥ the
    threshold, in score order, each take the unmatched label they overlap most at IoU ≥ 0.5; the means
    over labelled classes."""
    cats = range(1, len(NAMES) + 1)
    groups = []  # (class, scores descending, IoU matrix boxes x labels)
    npos = dict.fromkeys(cats, 0)
    for image_id, objs in d.boxes.items():
        for cat in cats:
            labels = np.array([o[1:] for o in objs if o[0] == cat]).reshape(-1, 4)
            npos[cat] += len(labels)
            rows = predictions[(predictions[:, 0] == image_id) & (predictions[:, 6] == cat)]
            rows = rows[np.argsort(-rows[:, 5])]
            groups.append((cat, rows[:, 5], iou_xywh(rows[:, 1:5], labels)))
    out = []
    for conf in confs:
        tp, fp = dict.fromkeys(cats, 0), dict.fromkeys(cats, 0)
        for cat, scores, iou in groups:
            used: set[int] = set()
            for i in range(int((scores >= conf).sum())):
                free = [(iou[i, j], j) for j in range(iou.shape[1]) if j not in used]
                best = max(free, default=(0.0, -1))
                if best[0] >= 0.5:
                    used.add(best[1])
                    tp[cat] += 1
                else:
                    fp[cat] += 1
        kept = [c for c in cats if npos[c]]
        p = float(np.mean([tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0 for c in kept]))
        r = float(np.mean([tp[c] / npos[c] for c in kept]))
        out.append((p, r, 2 * p * r / (p + r) if p + r else 0.0))
    return out


@functools.cache
def full_sweep(model: int) -> list[tuple[tuple[float, float, float], float]]:
    """The brute-force figures at every distinct score of model 1 or 2."""
    d, *preds = data()
    confs = tuple(np.unique(preds[model - 1][:, 5]))
    return list(zip(sweep(d, preds[model - 1], confs), confs, strict=True))


def test_f1_optimal_threshold_is_the_brute_force_sweep() -> None:
    d, a, _ = data()
    best = operating.best_f1(table(d, a))
    (p, r, f1), c = max(full_sweep(1), key=lambda x: (x[0][2], x[1]))
    assert best.conf == c and (best.precision, best.recall, best.f1) == pytest.approx((p, r, f1), abs=1e-12)
    assert 0.3 < best.f1 < 0.95


def test_a_hand_built_case_has_its_known_optimum() -> None:
    """Three labels; boxes scored 0.9 TP, 0.8 TP, 0.7 FP, 0.6 TP, 0.5 FP: best F1 6/7 at 0.6."""
    labels = [(10, 10, 50, 50), (100, 10, 50, 50), (10, 100, 50, 50)]
    gt = GroundTruth(
        "hand.json",
        "coco",
        {1: "cat"},
        {
            "images": [{"id": 1, "file_name": "1.jpg", "width": 200, "height": 200}],
            "annotations": [
                {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": list(b), "area": 2500.0, "iscrowd": 0}
                for i, b in enumerate(labels)
            ],
            "categories": [{"id": 1, "name": "cat"}],
        },
        {"1.jpg": 1},
    )
    boxes = [
        (*labels[0], 0.9),
        (*labels[1], 0.8),
        (150, 150, 40, 40, 0.7),
        (*labels[2], 0.6),
        (0, 150, 30, 30, 0.5),
    ]
    preds = np.array([[1, *b, 1] for b in boxes], dtype=float)
    from detect_cli.compare.accuracy import coco_eval
    from detect_cli.compare.matches import match_table

    best = operating.best_f1(match_table(coco_eval(gt, preds)))
    assert (
        best.conf == 0.6 and best.f1 == pytest.approx(6 / 7) and best.precision == 0.75 and best.recall == 1
    )


@pytest.mark.parametrize("conf", [0.1, 0.25, 0.5, 0.8])
def test_precision_and_recall_at_conf_are_accuracys(conf: float) -> None:
    d, a, b = data()
    for preds in (a, b):
        got = operating.point(table(d, preds), conf)
        acc = evaluate(d.gt, preds, conf=conf)
        assert (got.precision, got.recall) == pytest.approx((acc.precision, acc.recall), abs=1e-12)
        assert got.f1 == pytest.approx(brute_force(d, preds, conf)[2], abs=1e-12)


def test_curve_reports_the_grid_and_the_best_point() -> None:
    d, a, _ = data()
    c = operating.curve("a", table(d, a))
    assert len(c.conf) == len(c.precision) == len(c.recall) == len(c.f1) == 101
    assert c.recall[0] >= c.recall[50] >= c.recall[-1] and max(c.f1) <= c.best.f1 + 1e-12
    assert c.to_dict()["best"]["conf"] == c.best.conf


def test_recall_at_equal_precision_is_the_best_recall_reaching_it() -> None:
    d, a, b = data()
    ta, tb = table(d, a), table(d, b)
    eq = operating.equal_precision({"a": ta, "b": tb})
    assert eq.precision == min(operating.best_f1(ta).precision, operating.best_f1(tb).precision)
    for name, model in (("a", 1), ("b", 2)):
        pt = eq.points[name]
        assert pt is not None and pt.precision >= eq.precision
        reached = [r for (p, r, _), _ in full_sweep(model) if p >= eq.precision]
        assert pt.recall == pytest.approx(max(reached), abs=1e-12)
    assert eq.points["a"].recall > eq.points["b"].recall  # the better model finds more at equal precision
    assert operating.recall_at_precision(tb, 1.01) is None


def test_a_conf_far_from_the_best_is_flagged() -> None:
    d, a, _ = data()
    t = table(d, a)
    best = operating.best_f1(t)
    assert (
        not operating.conf_check("a", t, best.conf).far and operating.conf_check("a", t, best.conf).gap == 0
    )
    far = operating.conf_check("a", t, 0.97)
    assert far.far and far.gap == pytest.approx(best.f1 - operating.point(t, 0.97).f1) and far.gap > 0.05


def test_score_profile_without_labels() -> None:
    prof = operating.score_profile(
        "m", [[0.1, 0.52, 0.97], [], [0.5, 1.0]], bins=4, thresholds=[0.0, 0.5, 0.99]
    )
    assert prof.counts == (1, 0, 2, 2) and prof.edges == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert prof.boxes_per_picture == pytest.approx((5 / 3, 4 / 3, 1 / 3)) and prof.pictures == 3
    assert operating.score_profile("m", []).boxes_per_picture[0] == 0.0


def test_every_result_is_json_for_report_json() -> None:
    d, a, b = data()
    ta, tb = table(d, a), table(d, b)
    for result in (
        operating.curve("a", ta),
        operating.conf_check("a", ta, 0.25),
        operating.equal_precision({"a": ta, "b": tb}),
        operating.score_profile("a", [[0.3, 0.9]]),
    ):
        assert json.loads(json.dumps(result.to_dict()))
