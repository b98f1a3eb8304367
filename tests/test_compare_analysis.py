"""analysis.py: every figure the run's analysis reports, checked against an independent computation:
pycocotools on resampled datasets for the intervals, a brute-force sweep for the best threshold,
pycocotools' own counts for the error types. On the hand-built labels of tests/stats_data.py (seeded
detections, distinct scores); tests/test_compare_trained.py does the same on a real run of trained models."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import stats_data as sd

from detect_cli.compare import analysis
from detect_cli.compare.accuracy import _counts_at_conf, coco_eval, evaluate
from detect_cli.compare.agreement import match_detections
from detect_cli.compare.boxes import rows_to_pictures
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.model_facts import ModelInfo

NAMES = sd.NAMES
CONF = 0.25


def _info(label: str, family: str) -> ModelInfo:
    return ModelInfo(
        label, label, family, label, True, False, 3, None, None, "cpu", "torch", "fp32", 640,
        nms_free=family == "rtdetr", iou=0.7,
    )  # fmt: skip


def evidence(pictures: int = 20, calls: int = 1) -> tuple[analysis.Evidence, sd.Synthetic, list[np.ndarray]]:
    """Two seeded "models" on `pictures` labelled pictures, as run_comparison collects them."""
    data = sd.make_labels(pictures, background=min(2, pictures - 1))
    ids = sorted(data.gt.image_ids.values())
    rng = np.random.default_rng(7)
    models, all_rows = [], []
    for k, (label, family, ms) in enumerate((("rtdetr-l", "rtdetr", 40.0), ("yolo11n", "yolo", 12.0))):
        rows = sd.make_detections(data, seed=k + 1, keep=0.9 - 0.2 * k)
        at_conf = rows_to_pictures(rows, data.gt.categories, ids, CONF)
        detections = {n: at_conf[i] for n, i in enumerate(ids)}
        call_input = [n for n in range(len(ids)) for _ in range(calls)]
        wall = [ms * float(rng.lognormal(0, 0.15)) for _ in call_input]
        acc = evaluate(data.gt, rows, conf=CONF)
        models.append(analysis.ModelEvidence(_info(label, family), wall, call_input, detections, rows, acc))
        all_rows.append(rows)
    pair = analysis.PairEvidence(0, 1)
    for n in range(len(ids)):
        m = match_detections(models[0].detections[n], models[1].detections[n])
        pair.add(n, len(m.matched), len(m.only_a), len(m.only_b))
    ev = analysis.Evidence(models, [pair], CONF, 0.001, 0.5, NAMES, data.gt, ids)
    return ev, data, all_rows


@pytest.fixture(scope="module")
def analysed() -> tuple[analysis.Analysis, analysis.Evidence, sd.Synthetic, list[np.ndarray]]:
    ev, data, rows = evidence(20, calls=2)
    return analysis.analyse(ev, resamples=40), ev, data, rows


def _resampled(
    gt: GroundTruth, rows: np.ndarray, ids: list[int], draw: np.ndarray
) -> tuple[GroundTruth, np.ndarray]:
    """The labels and detections of the pictures in `draw` (repeats included), each copy a new picture."""
    images, annotations, out = [], [], []
    by_image: dict[int, list[dict]] = {}
    for a in gt.coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for new, pos in enumerate(draw, start=1):
        old = ids[pos]
        images.append({"id": new, "file_name": f"{new}.jpg", "width": sd.W, "height": sd.H})
        for a in by_image.get(old, []):
            annotations.append({**a, "id": len(annotations) + 1, "image_id": new})
        picked = rows[rows[:, 0] == old].copy()
        picked[:, 0] = new
        out.append(picked)
    coco = {"images": images, "annotations": annotations, "categories": gt.coco["categories"]}
    names = {i["file_name"]: i["id"] for i in images}
    return GroundTruth("resampled.json", "coco", gt.categories, coco, names), np.concatenate(out)


def test_map_interval_is_a_plain_bootstrap_of_pycocotools(analysed) -> None:  # type: ignore[no-untyped-def]
    """The mAP50-95 difference's interval: numpy's default_rng(seed) draws, each resample scored by
    pycocotools on a dataset made of the drawn pictures, the 2.5th and 97.5th percentiles."""
    a, ev, data, rows = analysed
    ids = list(ev.evaluated_ids)
    n, resamples = len(ids), a.resamples
    draws = np.random.default_rng(a.seed).integers(0, n, (resamples, n))
    diffs = []
    for draw in draws:
        gt, ra = _resampled(data.gt, rows[0], ids, draw)
        _, rb = _resampled(data.gt, rows[1], ids, draw)
        diffs.append(evaluate(gt, ra).map50_95 - evaluate(gt, rb).map50_95)
    [pair] = a.pairs
    iv = pair.map50_95
    assert iv is not None and iv.resamples == resamples
    assert iv.estimate == pytest.approx(
        ev.models[0].accuracy.map50_95 - ev.models[1].accuracy.map50_95, abs=1e-12
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert iv.low <= iv.estimate <= iv.high


def test_sizes_are_pycocotools_aps_apm_apl(analysed) -> None:  # type: ignore[no-untyped-def]
    a, ev, data, rows = analysed
    [pair] = a.pairs
    for k, r in enumerate(rows):
        e = coco_eval(data.gt, r, image_ids=ev.evaluated_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            e.accumulate()
            e.summarize()
        values = [s.a_value if k == 0 else s.b_value for s in pair.sizes]
        expected = [None if v < 0 else v for v in e.stats[3:6]]
        assert values == pytest.approx(expected, abs=1e-12)


def _brute_force_best(
    gt: GroundTruth, rows: np.ndarray, ids: Sequence[int] | None = None, names: Sequence[str] | None = None
) -> tuple[float, float]:
    """Every distinct score tried as the threshold, precision and recall from pycocotools' own matching
    (accuracy._counts_at_conf): the highest F1, of equal F1s the highest threshold."""
    ev = coco_eval(gt, rows, names, ids)
    best = (-1.0, -1.0)
    for conf in np.unique(rows[:, 5]):
        tp, fp, npos = _counts_at_conf(ev, float(conf))
        scored = [c for c in npos if npos[c]]
        p = np.mean([tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0 for c in scored])
        r = np.mean([tp[c] / npos[c] for c in scored])
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        best = max(best, (round(float(f1), 12), float(conf)))
    return best[1], best[0]


def test_best_threshold_is_a_brute_force_sweep(analysed) -> None:  # type: ignore[no-untyped-def]
    a, ev, data, rows = analysed
    for m, r in zip(a.models, rows, strict=True):
        conf, f1 = _brute_force_best(data.gt, r)
        assert m.curve is not None and m.conf_check is not None
        assert m.curve.best.conf == conf and m.curve.best.f1 == pytest.approx(f1, abs=1e-9)
        acc = ev.models[[x.info.label for x in ev.models].index(m.model)].accuracy
        assert m.conf_check.at_conf.precision == pytest.approx(acc.precision)  # the run's own figure
        assert m.conf_check.at_conf.recall == pytest.approx(acc.recall)


def test_error_types_add_up_to_pycocotools_counts(analysed) -> None:  # type: ignore[no-untyped-def]
    a, _, data, rows = analysed
    for m, r in zip(a.models, rows, strict=True):
        tp, fp, npos = _counts_at_conf(coco_eval(data.gt, r), CONF)
        e = m.errors
        assert e is not None
        assert (e.true_positives, e.false_positives) == (sum(tp.values()), sum(fp.values()))
        assert e.classification + e.localization + e.both + e.duplicate + e.background == e.false_positives
        assert e.missed + e.explained == sum(npos.values()) - sum(tp.values())  # the misses at IoU 0.5


def test_speed_and_agreement_intervals_are_plain_bootstraps(analysed) -> None:  # type: ignore[no-untyped-def]
    a, ev, *_ = analysed
    ma, mb = ev.models
    [pair], [p] = ev.pairs, a.pairs
    n = len(pair.inputs)
    draws = np.random.default_rng(a.seed).integers(0, n, (a.resamples, n))
    wa, wb = np.asarray(ma.wall_ms), np.asarray(mb.wall_ms)
    ca, cb = np.asarray(ma.call_input), np.asarray(mb.call_input)
    ratios, agreements, p50 = [], [], []
    for draw in draws:  # each drawn picture brings all its calls
        xa = np.concatenate([wa[ca == i] for i in draw])
        xb = np.concatenate([wb[cb == i] for i in draw])
        ratios.append(np.median(xa) / np.median(xb))
        p50.append(np.median(xa))
        m, oa, ob = (sum(np.asarray(v)[draw]) for v in (pair.matched, pair.only_a, pair.only_b))
        agreements.append(2 * m / (2 * m + oa + ob))
    for iv, reps, est in (
        (p.speed_ratio, ratios, np.median(wa) / np.median(wb)),
        (
            p.agreement,
            agreements,
            2 * sum(pair.matched) / (2 * sum(pair.matched) + sum(pair.only_a) + sum(pair.only_b)),
        ),
        (a.models[0].latency_p50, p50, np.median(wa)),
    ):
        assert iv.estimate == pytest.approx(est, rel=1e-12)
        low, high = np.percentile(reps, [2.5, 97.5])
        assert (iv.low, iv.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12)), iv.figure
        assert iv.low <= iv.estimate <= iv.high


def test_boxes_per_picture_and_the_duplicate_audit(analysed) -> None:  # type: ignore[no-untyped-def]
    a, ev, *_ = analysed
    for m, e in zip(a.models, ev.models, strict=True):
        counts = [len(d) for d in e.detections.values()]
        assert (m.boxes.boxes, m.boxes.max, m.boxes.mean) == (
            sum(counts),
            max(counts),
            pytest.approx(np.mean(counts)),
        )
    rtdetr, yolo = a.models
    assert rtdetr.duplicates is not None and rtdetr.duplicates.nms is not None  # NMS-free, labelled
    assert yolo.duplicates is None  # NMS ran on it
    assert rtdetr.duplicates.nms.map50_95 == pytest.approx(ev.models[0].accuracy.map50_95)


def test_report_json_carries_every_figure_with_its_interval(analysed) -> None:  # type: ignore[no-untyped-def]
    from detect_cli.writers import json_text

    a, *_ = analysed
    d = json.loads(json_text(a.to_dict()))
    pair = d["pairs"][0]
    for key in ("speed_ratio", "agreement", "map50_95", "map50"):
        assert {"estimate", "low", "high", "settled", "pictures", "resamples", "seed"} <= set(pair[key]), key
    assert [s["slice"] for s in pair["sizes"]] == ["small", "medium", "large"]
    assert all("difference" in s and "low" in s["difference"] for s in pair["clutter"] + pair["classes"])
    m = d["models"][0]
    assert m["curve"]["best"]["conf"] and m["conf_check"]["far"] in (True, False) and m["errors"]["labels"]
    assert d["equal_precision"]["precision"] > 0 and m["latency_p50"]["low"] is not None


def test_one_picture_has_no_interval_and_says_so() -> None:
    ev, *_ = evidence(1, calls=20)
    a = analysis.analyse(ev, resamples=50)
    [p] = a.pairs
    assert a.pictures == 1 and "one picture" in a.notes[0]
    for iv in (p.map50_95, p.map50, p.agreement):
        assert iv is not None and iv.low is None and iv.note == "one picture: no interval" and not iv.settled
    # speed: the 20 timed calls of each model are resampled (the only repetition there is)
    assert p.speed_ratio.low is not None and p.speed_ratio.method.endswith("calls independently")


def test_without_labels_score_profiles_and_agreement_slices() -> None:
    from dataclasses import replace

    ev, *_ = evidence(12)
    ev = replace(ev, labels=None, evaluated_ids=())
    a = analysis.analyse(ev, resamples=30)
    assert not a.labelled and a.pictures == 12 and a.equal_precision is None
    for m, e in zip(a.models, ev.models, strict=True):
        assert m.curve is None and m.errors is None and m.scores is not None
        assert sum(m.scores.counts) == sum(len(d) for d in e.detections.values())
    [p] = a.pairs
    assert p.map50_95 is None and [s.slice for s in p.agreement_by_size] == ["small", "medium", "large"]
    assert sum(s.matched for s in p.agreement_by_size) == sum(ev.pairs[0].matched)
    assert a.models[0].duplicates is not None and a.models[0].duplicates.nms is None  # twins only


def test_pruning_keeps_every_ap() -> None:
    from detect_cli.compare.matches import average_precision

    _, data, rows = evidence(15)
    table = sd.table(data, rows[0])
    w = np.random.default_rng(3).integers(0, 3, (20, table.pictures))
    for area in ("all", "small", "medium", "large"):
        np.testing.assert_array_equal(
            average_precision(analysis.prune(table), w, area), average_precision(table, w, area)
        )


# --- on a real run of the trained pair (tests/trained_pair.py) --------------------------------------

TRAINED = Path(__file__).parent / "data" / "trained"  # tests/data/trained/make.py made them
YOLO_PT, RTDETR_PT = TRAINED / "yolo-shapes.pt", TRAINED / "rtdetr-shapes.pt"
VAL_IMAGES, COCO_JSON = TRAINED / "val" / "images", TRAINED / "val" / "instances_val.json"
IMGSZ = 256  # what both were trained at
TRAINED_PICTURES = 12  # enough for intervals (and for the verdict to settle something), few for time


def compare_trained(
    tmp: Path, pictures: int, labels: Path | None = None
) -> tuple[Any, list[analysis.Evidence]]:
    """`detect compare` of the trained pair on the first `pictures` val pictures with their COCO labels,
    (or `labels`) at its trained imgsz on --backend torch; the evidence the run analysed is kept (a spy
    on `analyse`)."""
    from typer.testing import CliRunner

    from detect_cli.cli import app
    from detect_cli.compare import loop

    folder = tmp / "val"
    folder.mkdir()
    for path in sorted(VAL_IMAGES.glob("*.jpg"))[:pictures]:
        shutil.copy(path, folder / path.name)
    captured: list[analysis.Evidence] = []
    real = loop.analyse

    def spy(evidence: analysis.Evidence, *args: Any, **kwargs: Any) -> analysis.Analysis:
        captured.append(evidence)
        return real(evidence, *args, **kwargs)

    argv = [
        "compare", str(folder), "-m", f"{YOLO_PT},{RTDETR_PT}", "--coco", str(labels or COCO_JSON),
        "--backend", "torch", "--device", "cpu", "--imgsz", str(IMGSZ), "--warmup", "1", "--no-memory",
        "--no-save", "-o", str(tmp / "out"),
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "analyse", spy)
        result = CliRunner().invoke(app, argv, terminal_width=200)
    return result, captured


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], analysis.Evidence, str]:
    tmp = tmp_path_factory.mktemp("trained-analysis")
    result, [evidence] = compare_trained(tmp, TRAINED_PICTURES)
    assert result.exit_code == 0, result.output
    return json.loads((tmp / "out" / "report.json").read_text()), evidence, result.stderr


def _plain_pycocotools(gt: GroundTruth, rows: np.ndarray, ids: Sequence[int]) -> Any:
    """pycocotools as a user would run it: COCO results as dicts, loadRes, evaluate, accumulate,
    summarize, every box kept (maxDets 300)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = [
        {
            "image_id": int(r[0]),
            "bbox": [float(v) for v in r[1:5]],
            "score": float(r[5]),
            "category_id": int(r[6]),
        }
        for r in rows
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt.coco))
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.params.imgIds = list(ids)
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_trained_sizes_are_pycocotools_aps_apm_apl(trained) -> None:  # type: ignore[no-untyped-def]
    report, evidence, _ = trained
    [pair] = report["analysis"]["pairs"]
    assert evidence.labels is not None and len(evidence.evaluated_ids) == TRAINED_PICTURES
    for k, side in ((0, "a_value"), (1, "b_value")):
        ev = _plain_pycocotools(evidence.labels, evidence.models[k].eval_rows, evidence.evaluated_ids)
        expected = [None if v < 0 else v for v in ev.stats[3:6]]
        assert [s[side] for s in pair["sizes"]] == pytest.approx(expected, abs=5.1e-5)
        assert max(v for v in expected if v is not None) > 0.3  # trained: a wrong figure would show


def test_trained_best_threshold_is_a_brute_force_sweep(trained) -> None:  # type: ignore[no-untyped-def]
    report, evidence, _ = trained
    for m, e in zip(report["analysis"]["models"], evidence.models, strict=True):
        conf, f1 = _brute_force_best(evidence.labels, e.eval_rows, evidence.evaluated_ids, evidence.shared)
        assert m["curve"]["best"]["conf"] == pytest.approx(conf, abs=5.1e-5)
        assert m["curve"]["best"]["f1"] == pytest.approx(f1, abs=5.1e-5) and f1 > 0.2


def test_trained_intervals_are_a_plain_bootstrap(trained) -> None:  # type: ignore[no-untyped-def]
    """The run's own intervals contain their estimates; on the run's evidence, the mAP interval from a
    fixed seed equals pycocotools scoring each resampled dataset."""
    report, evidence, _ = trained
    [pair] = report["analysis"]["pairs"]
    for key in ("map50_95", "map50", "speed_ratio", "agreement"):
        iv = pair[key]
        assert iv["resamples"] == 1000 and iv["low"] <= iv["estimate"] <= iv["high"], key
    resamples = 25
    a = analysis.analyse(evidence, resamples=resamples)
    ids = list(evidence.evaluated_ids)
    gt = evidence.labels
    draws = np.random.default_rng(0).integers(0, len(ids), (resamples, len(ids)))
    diffs = []
    for draw in draws:
        sub, ra = _resampled(gt, evidence.models[0].eval_rows, ids, draw)
        _, rb = _resampled(gt, evidence.models[1].eval_rows, ids, draw)
        diffs.append(
            evaluate(sub, ra, evidence.shared).map50_95 - evaluate(sub, rb, evidence.shared).map50_95
        )
    iv = a.pairs[0].map50_95
    assert iv is not None and iv.estimate == pytest.approx(
        report["analysis"]["pairs"][0]["map50_95"]["estimate"], abs=5.1e-5
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


def test_trained_error_types_add_up_to_pycocotools_counts(trained) -> None:  # type: ignore[no-untyped-def]
    report, evidence, _ = trained
    for m, e in zip(report["analysis"]["models"], evidence.models, strict=True):
        ev = coco_eval(evidence.labels, e.eval_rows, evidence.shared, evidence.evaluated_ids)
        tp, fp, npos = _counts_at_conf(ev, CONF)
        errors = m["errors"]
        assert (errors["true_positives"], errors["false_positives"]) == (sum(tp.values()), sum(fp.values()))
        kinds = ("classification", "localization", "both", "duplicate", "background")
        assert sum(errors[k] for k in kinds) == errors["false_positives"]
        assert errors["missed"] + errors["explained"] == sum(npos.values()) - sum(tp.values())
        assert errors["true_positives"] > 0


def test_trained_terminal_starts_with_the_summary(trained) -> None:  # type: ignore[no-untyped-def]
    report, _, stderr = trained
    lines = stderr.splitlines()
    start = lines.index("Verdict:")
    assert lines[start + 1].strip() == report["verdict"]["summary"][0]
    assert report["verdict"]["summary"][0].startswith(("Choose ", "Nothing is settled"))
