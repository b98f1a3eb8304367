"""Slices, checked against pycocotools' own APs/APm/APl, COCOeval on the bucket's pictures alone, a plain
bootstrap loop, and hand-counted agreement."""

from __future__ import annotations

import contextlib
import functools
import io
import json

import numpy as np
import pytest
from stats_data import Synthetic, make_detections, make_labels, table

from detect_cli.compare import slices
from detect_cli.compare.accuracy import coco_eval, evaluate
from detect_cli.compare.agreement import match_detections
from detect_cli.compare.bootstrap import Interval
from detect_cli.compare.matches import average_precision, mean_ap
from detect_cli.results import Detection


@functools.cache
def data() -> tuple[Synthetic, np.ndarray, np.ndarray]:
    d = make_labels(40)
    return d, make_detections(d, seed=2), make_detections(d, seed=3, keep=0.65, jitter=0.12)


def test_size_slices_are_pycocotools_aps_apm_apl() -> None:
    d, a, b = data()
    stats = []
    for preds in (a, b):
        ev = coco_eval(d.gt, preds)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
            ev.summarize()
        stats.append(ev.stats[3:6])
    got = slices.size_slices("a", table(d, a), "b", table(d, b), resamples=100)
    assert [s.slice for s in got] == ["small", "medium", "large"]
    for s, sa, sb in zip(got, *stats, strict=True):
        assert (s.a_value, s.b_value) == pytest.approx((sa, sb), abs=1e-9)
        assert s.difference.estimate == pytest.approx(sa - sb, abs=1e-9)
        assert 0.05 < s.a_value < 0.9


def test_clutter_slice_is_cocoeval_on_its_pictures_and_resampled_among_them() -> None:
    d, a, b = data()
    ta, tb = table(d, a), table(d, b)
    got = slices.clutter_slices("a", ta, "b", tb, resamples=60, seed=3)
    assert [s.slice for s in got] == ["0\u20133", "4\u201310", "11+"]
    ids = sorted(d.boxes)
    for s, bucket in zip(got, slices.buckets(ta.labels_per_picture()), strict=True):
        counts = [len(d.boxes[ids[i]]) for i in bucket.pictures]
        assert min(counts) >= bucket.low and (bucket.high is None or max(counts) <= bucket.high)
        chosen = [ids[i] for i in bucket.pictures]
        assert s.a_value == pytest.approx(evaluate(d.gt, a, image_ids=chosen).map50_95, abs=1e-9)
        assert s.b_value == pytest.approx(evaluate(d.gt, b, image_ids=chosen).map50_95, abs=1e-9)
        # a plain loop: the bucket's m pictures drawn m times with replacement
        m = len(bucket.pictures)
        reps = []
        for row in np.random.default_rng(3).integers(0, m, (60, m)):
            w = np.zeros((1, ta.pictures))
            np.add.at(w[0], np.asarray(bucket.pictures)[row], 1)
            reps.append(mean_ap(average_precision(ta, w))[0][0] - mean_ap(average_precision(tb, w))[0][0])
        reps = np.asarray(reps)
        low, high = np.percentile(reps[~np.isnan(reps)], [2.5, 97.5])
        assert (s.difference.low, s.difference.high) == pytest.approx((low, high), abs=1e-12)
        assert s.difference.pictures == m


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([1, 2, 3, 0, 5, 6, 8, 9, 10, 4, 12, 14, 11, 15, 20, 2, 7, 13], ["0\u20133", "4\u201310", "11+"]),
        ([1] * 20 + [2] * 10 + [3] * 10 + [5], ["1", "2", "3\u20135"]),  # skewed: terciles
        ([4] * 12, ["4"]),  # every picture alike: one bucket
    ],
)
def test_buckets_fixed_or_terciles(counts: list[int], expected: list[str]) -> None:
    got = slices.buckets(counts)
    assert [b.name for b in got] == expected
    assert sorted(i for b in got for i in b.pictures) == list(range(len(counts)))  # each picture once


def test_class_slices_are_per_class_ap_and_the_largest_settled_come_first() -> None:
    d, a, b = data()
    got = slices.class_slices("a", table(d, a), "b", table(d, b), d.gt.categories, resamples=150)
    acc_a, acc_b = evaluate(d.gt, a), evaluate(d.gt, b)
    for s, ca, cb in zip(got, acc_a.per_class, acc_b.per_class, strict=True):
        assert s.slice == ca.class_name and (s.a_value, s.b_value) == pytest.approx(
            (ca.map50_95, cb.map50_95)
        )
    top = slices.largest_settled(got, top=2)
    settled = sorted((s for s in got if s.difference.settled), key=lambda s: -abs(s.difference.estimate))
    assert list(top) == settled[:2] and top  # the better model wins some classes clearly


def test_findings_are_from_the_winners_side() -> None:
    def diff(est: float, low: float, high: float, settled: bool = True) -> Interval:
        return Interval("mAP50-95 difference", "difference", est, low, high, 22, settled)

    rows = [
        slices.SliceDifference(
            "clutter", "11+", "yolo11n", "rtdetr-l", 0.3, 0.361, diff(-0.061, -0.103, -0.02)
        ),
        slices.SliceDifference("size", "small", "yolo11n", "rtdetr-l", 0.2, 0.1, diff(0.1, 0.01, 0.19)),
        slices.SliceDifference("size", "large", "yolo11n", "rtdetr-l", 0.2, 0.1, diff(0.3, -0.1, 0.6, False)),
    ]
    found = slices.findings(rows)
    assert [slices.sentence(f) for f in found] == [
        "yolo11n: +10.0 mAP50-95 on small objects, 95 % CI +1.0 to +19.0",
        "rtdetr-l: +6.1 mAP50-95 on pictures with 11+ objects, 95 % CI +2.0 to +10.3",
    ]
    assert found[1].to_dict()["sentence"].startswith("rtdetr-l: +6.1") and found[1].loser == "yolo11n"


def det(x: float, y: float, side: float, conf: float = 0.9, name: str = "cat") -> Detection:
    return Detection(0, name, conf, (x, y, x + side, y + side))


def test_agreement_by_size_counts_pairs_by_their_mean_area() -> None:
    pictures = [
        (
            [det(0, 0, 20), det(100, 100, 200)],
            [det(1, 1, 20), det(300, 0, 60)],
        ),  # small match; large, medium alone
        ([det(0, 0, 50)], [det(2, 2, 50), det(200, 200, 10)]),  # medium match; small alone
        ([det(0, 0, 30, name="dog")], []),  # a class the models do not share: not counted
    ]
    got = {s.slice: s for s in slices.agreement_by_size(pictures, classes=frozenset({"cat"}), resamples=50)}
    assert [(got[s].matched, got[s].only_a, got[s].only_b) for s in slices.SIZES] == [
        (1, 0, 1),
        (1, 0, 1),
        (0, 1, 0),
    ]
    assert got["small"].agreement.estimate == pytest.approx(2 / 3) and got["large"].agreement.estimate == 0.0
    # the sizes together are the run's agreement on these pictures
    totals = [match_detections(a, b, classes=frozenset({"cat"})) for a, b in pictures]
    assert sum(s.matched for s in got.values()) == sum(len(m.matched) for m in totals)
    assert sum(s.only_b for s in got.values()) == sum(len(m.only_b) for m in totals)


def test_agreement_by_boxes_per_picture() -> None:
    rng = np.random.default_rng(5)
    matched = rng.integers(0, 12, 40)
    only_a, only_b = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    got = slices.agreement_by_boxes(matched, only_a, only_b, resamples=100)
    boxes = (2 * matched + only_a + only_b) // 2
    for s, bucket in zip(got, slices.buckets(boxes), strict=True):
        sel = list(bucket.pictures)
        m, oa, ob = matched[sel].sum(), only_a[sel].sum(), only_b[sel].sum()
        assert (s.matched, s.only_a, s.only_b) == (m, oa, ob)
        assert s.agreement.estimate == pytest.approx(2 * m / (2 * m + oa + ob))
        assert s.agreement.pictures == len(sel) and s.to_dict()["agreement"]["kind"] == "level"


def test_every_result_is_json_for_report_json() -> None:
    d, a, b = data()
    sizes = slices.size_slices("a", table(d, a), "b", table(d, b), resamples=20)
    rows = [
        *sizes,
        *slices.findings(sizes),
        *slices.agreement_by_boxes([1, 2, 3], [0, 1, 0], [1, 0, 0], resamples=20),
    ]
    for row in rows:
        assert json.loads(json.dumps(row.to_dict(), allow_nan=False))
