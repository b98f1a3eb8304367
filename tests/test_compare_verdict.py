"""The verdict from the analysis: a difference called only when its interval excludes none (on enough
pictures), the "Choose X if …" summary from settled figures only, the --conf warning, random weights
said once. Hand-made intervals (the figures themselves are tests/test_compare_analysis.py's)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_compare_report import _comparison

from detect_cli.compare import report
from detect_cli.compare.analysis import Analysis, ModelAnalysis, PairAnalysis
from detect_cli.compare.bootstrap import Interval
from detect_cli.compare.boxes import BoxCounts
from detect_cli.compare.operating import ConfCheck, OperatingPoint
from detect_cli.compare.results import Comparison, Memory
from detect_cli.compare.slices import Finding
from detect_cli.compare.verdict import TIMES, nice_budget, possessive, verdict


def _iv(
    figure: str, kind: str, est: float, low: float | None, high: float | None, n: int, more: int | None = None
) -> Interval:
    null = {"difference": 0.0, "ratio": 1.0}.get(kind)
    settled = null is not None and low is not None and high is not None and (low > null or high < null)
    note = "one picture: no interval" if low is None else None
    return Interval(
        figure, kind, est, low, high, n, settled, 0.01, more, 1000 if low is not None else 0, note=note
    )  # type: ignore[arg-type]


BOXES = BoxCounts(0.25, 22, 40, 2, 1.8, 2.0, 5)


def _analysed(
    c: Comparison,
    speed: Interval,
    map50_95: Interval | None,
    p50: tuple[Interval, Interval],
    findings: tuple[Finding, ...] = (),
    checks: tuple[ConfCheck | None, ConfCheck | None] = (None, None),
) -> Comparison:
    models = tuple(
        ModelAnalysis(m.info.label, lat, BOXES, conf_check=k)
        for m, lat, k in zip(c.models, p50, checks, strict=True)
    )
    agreement = _iv("agreement", "level", 0.727, 0.6, 0.8, 22)
    pair = PairAnalysis("rtdetr-l", "yolo11n", speed, agreement, map50_95, map50_95, findings=findings)
    a = Analysis(22, map50_95 is not None, 1000, 0, models, (pair,))
    return replace(c, analysis=a)


def _memory(c: Comparison, *mb: float) -> Comparison:
    models = tuple(replace(m, memory=Memory(v, "rss", 3)) for m, v in zip(c.models, mb, strict=True))
    return replace(c, models=models)


P50 = (_iv("p50", "level", 120.0, 116.0, 125.0, 22), _iv("p50", "level", 30.0, 28.5, 31.6, 22))


def test_settled_differences_are_called_with_their_intervals() -> None:
    c = _memory(_comparison(accuracy=True), 600.0, 200.0)
    c = replace(
        c, models=(replace(c.models[0], accuracy=replace(c.models[0].accuracy, map50_95=0.55)), c.models[1])
    )
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22)  # rtdetr-l / yolo11n: rtdetr-l slower
    acc = _iv("mAP50-95 difference", "difference", 0.05, 0.021, 0.079, 22)
    finding = Finding("rtdetr-l", "yolo11n", "mAP50-95", 6.1, "on small objects", 2.0, 10.3, 22)
    v = verdict(_analysed(c, speed, acc, P50, (finding,)))
    [pair] = v.pairs
    assert pair.sentence == (
        f"yolo11n: 4.0{TIMES} faster (95 % CI 3.6{TIMES} to 4.4{TIMES}), 3.0{TIMES} less memory; "
        "rtdetr-l: +5.0 mAP50-95 on your 4 images (95 % CI +2.1 to +7.9); they agree on 73% of boxes "
        "(95 % CI 60% to 80%) over 4 images."
    )
    assert pair.speed_settled and pair.map_settled and pair.unsettled == ()
    assert v.summary == (
        "Choose yolo11n if you need under 40 ms a picture here (p50 30 ms, 95 % CI 28.5 to 31.6; p95 33 ms; "
        "rtdetr-l: p50 120 ms).",
        "Choose rtdetr-l if accuracy matters most: +5.0 mAP50-95 on your 22 images (95 % CI +2.1 to +7.9).",
        "Choose rtdetr-l for small objects: +6.1 mAP50-95 (95 % CI +2.0 to +10.3, 22 images).",
        f"Choose yolo11n if memory is tight: 3.0{TIMES} less peak memory (200 vs 600 MB, one measurement "
        "each).",
    )
    lines = report.terminal_lines(replace(c, analysis=_analysed(c, speed, acc, P50, (finding,)).analysis))
    assert lines[0] == "Verdict:" and lines[1] == f"  {v.summary[0]}"  # the terminal starts with the summary


def test_the_analysis_order_of_a_pair_does_not_matter() -> None:
    """An analysis with the pair the other way round (b vs a): the same claims, signs turned."""
    c = _comparison(accuracy=True)
    c = replace(
        c, models=(replace(c.models[0], accuracy=replace(c.models[0].accuracy, map50_95=0.55)), c.models[1])
    )
    speed = _iv("p50 ratio", "ratio", 0.25, 1 / 4.4, 1 / 3.6, 22)  # yolo11n / rtdetr-l
    acc = _iv("mAP50-95 difference", "difference", -0.05, -0.079, -0.021, 22)
    analysed = _analysed(c, speed, acc, P50)
    a = analysed.analysis
    assert a is not None
    flipped = replace(a, pairs=(replace(a.pairs[0], a="yolo11n", b="rtdetr-l"),))
    [pair] = verdict(replace(analysed, analysis=flipped)).pairs
    assert f"yolo11n: 4.0{TIMES} faster (95 % CI 3.6{TIMES} to 4.4{TIMES})" in pair.sentence
    assert "rtdetr-l: +5.0 mAP50-95 on your 4 images (95 % CI +2.1 to +7.9)" in pair.sentence


def test_an_unsettled_difference_says_how_many_pictures_would_settle_it() -> None:
    c = _comparison(accuracy=True)
    c = replace(
        c, models=(replace(c.models[0], accuracy=replace(c.models[0].accuracy, map50_95=0.53)), c.models[1])
    )
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22)
    acc = _iv("mAP50-95 difference", "difference", 0.03, -0.01, 0.07, 22, more=140)
    v = verdict(_analysed(c, speed, acc, P50))
    [pair] = v.pairs
    assert "mAP50-95 (rtdetr-l +3.0): not settled on 22 images (about 140 would settle it)" in pair.sentence
    assert pair.more_accurate is None and pair.map_settled is False
    assert not any("accuracy" in line for line in v.summary) and v.summary[0].startswith("Choose yolo11n")


def test_too_few_pictures_settle_nothing() -> None:
    """A percentile interval on 5 pictures excludes 0 easily: shown, not called."""
    c = _comparison(accuracy=True)
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 5)
    acc = _iv("mAP50-95 difference", "difference", 0.05, 0.02, 0.08, 5)
    few = Finding("rtdetr-l", "yolo11n", "mAP50-95", 6.1, "on small objects", 2.0, 10.3, 5)
    v = verdict(_analysed(c, speed, acc, P50, (few,)))
    [pair] = v.pairs
    assert pair.sentence.startswith(f"Speed (yolo11n 4.00{TIMES} faster): too few images to settle (5; 10 at")
    assert pair.faster is None and v.summary == (
        "Nothing is settled between rtdetr-l and yolo11n on 22 images: more images would tell them apart "
        "(see the pairs below).",
    )


def test_a_budget_the_slower_model_also_meets_is_not_offered() -> None:
    c = _comparison(accuracy=False)
    speed = _iv("p50 ratio", "ratio", 1.2, 1.1, 1.3, 22)
    close = (_iv("p50", "level", 36.0, 35.0, 37.0, 22), _iv("p50", "level", 30.0, 29.0, 31.0, 22))
    v = verdict(_analysed(c, speed, None, close))
    assert v.summary[0] == f"Choose yolo11n if speed matters most: 1.2{TIMES} faster here (p50 30 vs 36 ms)."


@pytest.mark.parametrize(("ms", "budget"), [(12.6, 15), (31.6, 40), (0.72, 0.8), (100.0, 100), (8.1, 10)])
def test_nice_budget(ms: float, budget: float) -> None:
    assert nice_budget(ms) == pytest.approx(budget)


def _far_from_best(model: str) -> ConfCheck:
    """--conf 0.25 against a best threshold of 0.41, 0.07 of F1 below it: far."""
    return ConfCheck(
        model, 0.25, OperatingPoint(0.25, 0.5, 0.6, 0.55), OperatingPoint(0.41, 0.7, 0.55, 0.62), 0.07, True
    )


def test_conf_far_from_the_best_threshold_is_warned() -> None:
    c = _comparison(accuracy=True)
    far = _far_from_best("rtdetr-l")
    near = replace(far, model="yolo11n", gap=0.01, far=False)
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22)
    v = verdict(_analysed(c, speed, None, P50, checks=(far, near)))
    assert v.warnings == (
        "--conf 0.25 is far from rtdetr-l's best threshold on these labels (0.41: F1 0.62 vs 0.55).",
    )
    assert v.lines.index(v.warnings[0]) < v.lines.index(v.pairs[0].sentence)


def test_random_weights_said_once_then_only_speed_and_memory() -> None:
    c = _memory(_comparison(accuracy=True), 600.0, 200.0)
    c = replace(c, models=tuple(replace(m, info=replace(m.info, untrained=True)) for m in c.models))
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22)
    acc = _iv("mAP50-95 difference", "difference", 0.05, 0.02, 0.08, 22)
    finding = Finding("rtdetr-l", "yolo11n", "mAP50-95", 6.1, "on small objects", 2.0, 10.3, 22)
    far = _far_from_best("rtdetr-l")
    v = verdict(_analysed(c, speed, acc, P50, (finding,), (far, None)))
    assert (
        v.lines[0].startswith("Random weights")
        and sum("random weights" in x.casefold() for x in v.lines) == 1
    )
    assert [x.split(" if ")[1].split(":")[0].split(" (")[0] for x in v.summary] == [
        "you need under 40 ms a picture here",
        "memory is tight",
    ]
    assert v.warnings == () and "mAP" not in v.pairs[0].sentence and "agree" not in v.pairs[0].sentence


def test_a_settled_speed_difference_within_5_percent_is_about_the_same() -> None:
    """Two copies of one model on a busy machine: 1.07x, settled, yet no speed claim and no budget."""
    c = _comparison(accuracy=False)
    c = replace(
        c, models=(c.models[0], replace(c.models[1], speed=replace(c.models[0].speed, latency_p50_ms=112.0)))
    )
    speed = _iv("p50 ratio", "ratio", 120 / 112, 1.02, 1.12, 22)
    v = verdict(_analysed(c, speed, None, (P50[0], replace(P50[0], estimate=112.0))))
    [pair] = v.pairs
    assert pair.faster is None and not pair.speed_settled
    assert (
        f"about as fast as each other (yolo11n 1.07{TIMES} faster, 95 % CI 1.02{TIMES} to 1.12{TIMES}: "
        "within 5 %)" in pair.sentence
    )
    assert not any("speed" in line or " ms " in line for line in v.summary)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("rtdetr-l", "rtdetr-l's"),
        ("rtdetr-shapes", "rtdetr-shapes'"),
        ("yolo11s", "yolo11s'"),
        ("RTDETR-S", "RTDETR-S'"),
        ("yolo11n openvino int8", "yolo11n openvino int8's"),
        ("best.pt", "best.pt's"),
    ],
)
def test_possessive(name: str, said: str) -> None:
    assert possessive(name) == said


def test_the_warning_of_a_name_ending_in_s_takes_an_apostrophe_alone() -> None:
    c = _comparison(accuracy=True)
    c = replace(
        c, models=(replace(c.models[0], info=replace(c.models[0].info, label="rtdetr-shapes")), c.models[1])
    )
    far = _far_from_best("rtdetr-shapes")
    analysed = _analysed(c, _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22), None, P50, checks=(far, None))
    v = verdict(analysed)
    assert v.warnings == (
        "--conf 0.25 is far from rtdetr-shapes' best threshold on these labels (0.41: F1 0.62 vs 0.55).",
    )
    assert f"  {v.warnings[0]}" in report.terminal_lines(analysed)  # the terminal says it the same way


@pytest.mark.parametrize("a_faster", [False, True])
def test_the_pick_carries_the_intervals_turned_to_the_picked_side(a_faster: bool) -> None:
    """The report's one-line pick repeats the analysis' intervals on the picked model's side: the speed
    as slower over faster, the mAP50-95 lead in points (it used to give the point figures only)."""
    from detect_cli.compare.report_summary import pick

    c = _comparison(accuracy=True)
    a, b = c.models
    assert a.accuracy is not None
    a = replace(a, accuracy=replace(a.accuracy, map50_95=0.55))
    speed = _iv("p50 ratio", "ratio", 4.0, 3.6, 4.4, 22)  # rtdetr-l's p50 over yolo11n's
    p50 = P50
    if a_faster:  # the same figures the other way round: rtdetr-l a quarter of yolo11n's time
        a = replace(a, speed=replace(a.speed, latency_p50_ms=30.0))
        b = replace(b, speed=replace(b.speed, latency_p50_ms=120.0))
        speed, p50 = _iv("p50 ratio", "ratio", 0.25, 1 / 4.4, 1 / 3.6, 22), P50[::-1]
    acc = _iv("mAP50-95 difference", "difference", 0.05, 0.021, 0.079, 22)
    analysed = _analysed(replace(c, models=(a, b)), speed, acc, p50)
    [p] = verdict(analysed).pairs
    said = pick(p, analysed)
    assert p.faster == ("rtdetr-l" if a_faster else "yolo11n"), said
    assert f"4.0{TIMES} faster here (p50; 95 % CI 3.6{TIMES} to 4.4{TIMES})" in said, said
    assert "+5.0 mAP50-95 (on your 4 images; 95 % CI +2.1 to +7.9)" in said, said
