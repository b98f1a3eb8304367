"""The bootstrap engine, checked against independent computations: pycocotools' COCOeval on datasets where
the resampled pictures are literally duplicated, and a plain NumPy bootstrap loop written here."""

from __future__ import annotations

import contextlib
import functools
import io
import math

import numpy as np
import pytest
from stats_data import Synthetic, make_detections, make_labels, table

from detect_cli.compare import bootstrap
from detect_cli.compare.accuracy import coco_eval, evaluate
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.matches import average_precision, mean_ap, picture_weights
from detect_cli.compare.results import ClassAgreement


@functools.cache
def data() -> tuple[Synthetic, np.ndarray, np.ndarray]:
    d = make_labels(40)
    return d, make_detections(d, seed=2), make_detections(d, seed=3, keep=0.65, jitter=0.12)


def cocoeval_maps(gt: GroundTruth, predictions: np.ndarray) -> tuple[float, float, np.ndarray]:
    """mAP50-95, mAP50 and per-class AP as COCOeval itself averages its precision array."""
    ev = coco_eval(gt, predictions)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]  # [IoU, recall, class]
    per_class = np.array([p[:, :, k][p[:, :, k] > -1].mean() if (p[:, :, k] > -1).any() else np.nan
                          for k in range(p.shape[2])])  # fmt: skip
    return float(p[p > -1].mean()), float(p[0][p[0] > -1].mean()), per_class


def duplicated(d: Synthetic, predictions: np.ndarray, weights: np.ndarray) -> tuple[GroundTruth, np.ndarray]:
    """The dataset a resample stands for: picture i copied weights[i] times, each copy a new image id
    with its labels and detections."""
    coco = d.gt.coco
    images, annotations, rows = [], [], []
    ids = sorted(d.boxes)
    for pos, image_id in enumerate(ids):
        for copy in range(int(weights[pos])):
            new_id = 1000 * (copy + 1) + image_id
            images.append({**next(i for i in coco["images"] if i["id"] == image_id), "id": new_id})
            for a in coco["annotations"]:
                if a["image_id"] == image_id:
                    annotations.append({**a, "id": len(annotations) + 1, "image_id": new_id})
            p = predictions[predictions[:, 0] == image_id].copy()
            p[:, 0] = new_id
            rows.append(p)
    gt = GroundTruth(
        "dup.json",
        "coco",
        d.gt.categories,
        {"images": images, "annotations": annotations, "categories": coco["categories"]},
        {str(i["id"]): i["id"] for i in images},
    )
    return gt, np.concatenate(rows)


@pytest.mark.parametrize("model", [1, 2])
def test_all_pictures_once_is_cocoeval_and_detects_accuracy(model: int) -> None:
    d, *preds = data()
    t = table(d, preds[model - 1])
    m, m50 = (float(x[0]) for x in mean_ap(average_precision(t, np.ones((1, t.pictures)))))
    ref, ref50, _ = cocoeval_maps(d.gt, preds[model - 1])
    acc = evaluate(d.gt, preds[model - 1])
    assert 0.05 < m < 0.9 and 0.05 < m50 < 0.95  # a case where mAP is far from 0 and 1
    assert m == pytest.approx(ref, abs=1e-9) and m50 == pytest.approx(ref50, abs=1e-9)
    assert m == pytest.approx(acc.map50_95, abs=1e-9) and m50 == pytest.approx(acc.map50, abs=1e-9)


def _resample_weights(d: Synthetic, kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    w = rng.integers(0, 4, len(d.boxes))  # some pictures 2 or 3 times, some absent
    if kind == "class absent":  # no picture with a "bird" label: the class drops out of the mean
        w[[i for i, objs in enumerate(d.boxes.values()) if any(c == 3 for c, *_ in objs)]] = 0
    return w


@pytest.mark.parametrize("kind", ["resample", "class absent"])
def test_a_resample_is_cocoeval_on_the_pictures_duplicated(kind: str) -> None:
    d, a, _ = data()
    w = _resample_weights(d, kind)
    assert (w == 0).any() and (w >= 2).any()
    ap = average_precision(table(d, a), w[None])
    m, m50 = (float(x[0]) for x in mean_ap(ap))
    ref, ref50, ref_class = cocoeval_maps(*duplicated(d, a, w))
    assert m == pytest.approx(ref, abs=1e-9) and m50 == pytest.approx(ref50, abs=1e-9)
    np.testing.assert_allclose(ap[0].mean(axis=0), ref_class, atol=1e-9)  # NaN where COCOeval has -1
    assert np.isnan(ref_class).any() == (kind == "class absent")


def reference_bootstrap(stat, n: int, resamples: int, seed: int) -> tuple[float, float, np.ndarray]:
    """A plain loop: draw n of n pictures with replacement, recompute, take the 2.5/97.5 percentiles."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, (resamples, n))
    reps = np.array([stat(np.bincount(row, minlength=n)) for row in draws])
    low, high = np.percentile(reps, [2.5, 97.5])
    return float(low), float(high), reps


def test_map_difference_interval_is_the_plain_bootstrap() -> None:
    d, a, b = data()
    ta, tb = table(d, a), table(d, b)
    diff, diff50 = bootstrap.map_differences(ta, tb, resamples=200, seed=5)

    def stat(w: np.ndarray) -> float:
        return float(
            mean_ap(average_precision(ta, w[None]))[0][0] - mean_ap(average_precision(tb, w[None]))[0][0]
        )

    low, high, reps = reference_bootstrap(stat, ta.pictures, 200, 5)
    assert (diff.low, diff.high) == pytest.approx((low, high), abs=1e-12)
    assert diff.standard_error == pytest.approx(reps.std(ddof=1), abs=1e-12)
    assert diff.estimate == pytest.approx(evaluate(d.gt, a).map50_95 - evaluate(d.gt, b).map50_95, abs=1e-9)
    assert diff.low < diff.estimate < diff.high and diff50.low < diff50.estimate < diff50.high
    assert diff.resamples == 200 and diff.pictures == 40
    # one resample of the reference checked against COCOeval on the literally duplicated pictures
    row = np.bincount(np.random.default_rng(5).integers(0, 40, (200, 40))[0], minlength=40)
    cocoeval_diff = cocoeval_maps(*duplicated(d, a, row))[0] - cocoeval_maps(*duplicated(d, b, row))[0]
    assert reps[0] == pytest.approx(cocoeval_diff, abs=1e-9)


def test_a_clear_difference_is_settled_and_a_small_one_says_how_many_pictures() -> None:
    d, a, b = data()
    clear, _ = bootstrap.map_differences(table(d, a), table(d, b), resamples=200)
    assert clear.settled and clear.low > 0 and clear.pictures_to_settle is None
    twin = make_detections(d, seed=4)  # the same kind of model as `a`, other noise
    close, _ = bootstrap.map_differences(table(d, a), table(d, twin), resamples=200)
    assert not close.settled and close.low < 0 < close.high
    expected = math.ceil(40 * (1.959963984540054 * close.standard_error / abs(close.estimate)) ** 2)
    assert close.pictures_to_settle == max(41, expected)
    assert close.to_dict()["pictures_to_settle"] == close.pictures_to_settle


def test_more_pictures_narrow_the_interval() -> None:
    widths = []
    for n in (15, 60):
        d = make_labels(n, seed=11, background=1)
        a, b = make_detections(d, seed=2), make_detections(d, seed=3, keep=0.65, jitter=0.12)
        diff, _ = bootstrap.map_differences(table(d, a), table(d, b), resamples=200)
        widths.append(diff.high - diff.low)
    assert widths[1] < 0.75 * widths[0]


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    d, a, b = data()
    ta, tb = table(d, a), table(d, b)
    first = bootstrap.map_differences(ta, tb, resamples=100, seed=1)[0]
    assert bootstrap.map_differences(ta, tb, resamples=100, seed=1)[0] == first
    assert bootstrap.map_differences(ta, tb, resamples=100, seed=2)[0].low != first.low


def test_one_picture_gets_no_interval_and_says_so() -> None:
    d, a, b = data()
    diff, diff50 = bootstrap.map_differences(table(d, a), table(d, b), pictures=[3])
    assert diff.estimate is not None and diff.low is None and diff.high is None
    assert not diff.settled and diff.note == "one picture: no interval" and diff50.note == diff.note
    ratio = bootstrap.speed_ratio([10.0, 11.0], [5.0, 6.0], [0, 0], [0, 0])
    assert ratio.estimate == pytest.approx(10.5 / 5.5) and ratio.low is None and ratio.pictures == 1
    assert bootstrap.agreement([2], [1], [0]).note == "one picture: no interval"
    alone = bootstrap.speed_ratio([10.0], [5.0, 6.0])  # calls not tied to pictures: resampled on their own
    assert alone.estimate == pytest.approx(10 / 5.5) and alone.note == "one call: no interval"
    assert bootstrap.speed_ratio([], [5.0]).estimate is None


def test_agreement_interval_is_the_plain_bootstrap() -> None:
    rng = np.random.default_rng(3)
    m, oa, ob = rng.integers(0, 8, 30), rng.integers(0, 3, 30), rng.integers(0, 4, 30)
    res = bootstrap.agreement(m, oa, ob, resamples=300, seed=9)
    whole = ClassAgreement("all", int(m.sum()), int(oa.sum()), int(ob.sum()), None).agreement
    assert res.estimate == pytest.approx(whole)

    def stat(w: np.ndarray) -> float:
        return 2 * (w @ m) / (2 * (w @ m) + w @ oa + w @ ob)

    low, high, _ = reference_bootstrap(stat, 30, 300, 9)
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)
    assert res.kind == "level" and not res.settled and res.pictures_to_settle is None


def test_weighted_median_is_numpys_median_of_the_repeated_values() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(20, 3, 17)
    weights = rng.integers(0, 4, (50, 17))
    weights[0] = 0
    weights[0, 5] = 1  # a single value
    got = bootstrap.weighted_median(values, weights)
    want = [np.median(np.repeat(values, w)) for w in weights]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_speed_ratio_paired_by_picture_is_the_plain_bootstrap() -> None:
    rng = np.random.default_rng(1)
    pictures = np.repeat(np.arange(25), 2)  # --runs 2: two calls per picture
    slow = 30 + 10 * rng.random(25)  # crowded pictures slow both models
    a = slow[pictures] + rng.normal(0, 1, 50)
    b = 0.5 * slow[pictures] + rng.normal(0, 1, 50)
    res = bootstrap.speed_ratio(a, b, pictures, pictures, resamples=300, seed=4)
    assert res.estimate == pytest.approx(np.median(a) / np.median(b))

    def stat(w: np.ndarray) -> float:
        keep = np.repeat(np.arange(50), w[pictures])
        return float(np.median(a[keep]) / np.median(b[keep]))

    low, high, _ = reference_bootstrap(stat, 25, 300, 4)
    assert (res.low, res.high) == pytest.approx((low, high), rel=1e-12)
    assert res.settled and res.low > 1 and res.pictures == 25


def test_speed_ratio_without_aligned_pictures_resamples_calls_independently() -> None:
    rng = np.random.default_rng(2)
    a, b = 20 + rng.random(40), 20.2 + rng.random(31)
    res = bootstrap.speed_ratio(a, b, resamples=300, seed=6)
    draws = np.random.default_rng(6)
    ra, rb = draws.integers(0, 40, (300, 40)), draws.integers(0, 31, (300, 31))
    reps = np.median(a[ra], axis=1) / np.median(b[rb], axis=1)
    assert (res.low, res.high) == pytest.approx(tuple(np.percentile(reps, [2.5, 97.5])), rel=1e-12)
    assert res.pictures == 31 and "independently" in res.method
    if not res.settled:
        assert res.pictures_to_settle is not None and res.pictures_to_settle > 31


def test_picture_weights_count_the_draws() -> None:
    w = picture_weights(np.array([[0, 0, 2], [1, 2, 2]]), 4)
    assert w.tolist() == [[2, 0, 1, 0], [0, 1, 2, 0]]


def test_reading_the_curve_by_histogram_is_the_search_exactly() -> None:
    """`matches._read_at` (a histogram of the TP counts) against the search it replaced, on resampled
    counts with ties, zeros and levels past the last point: the same floats, bit for bit, so every
    interval is unchanged."""
    import numpy as np

    from detect_cli.compare import matches

    rng = np.random.default_rng(1)
    for rows, points, npos in ((1, 1, 1), (7, 5, 3), (200, 40, 60), (50, 300, 400)):
        tp = np.cumsum(rng.integers(0, 3, (rows, points)), axis=1).astype(float)
        needed = np.sort(rng.integers(0, npos + 2, (rows, 101)), axis=1)
        pr = rng.random((rows, points))
        fast, searched = matches._read_at(tp, needed, pr), matches._read_at_by_search(tp, needed, pr)
        assert fast.tobytes() == searched.tobytes()
