"""The report's first screen, as plain data: one line on what ran and where (`facts`), the warnings that
hold for the whole page, each said once (`bands`), the verdict per pair of models as a pick and the
figures behind it (`summary`), and the note under the overview plot."""

from __future__ import annotations

from typing import Any

from detect_cli.compare.report_plots import overview_place
from detect_cli.compare.report_tables import input_shapes_differ
from detect_cli.compare.results import Comparison
from detect_cli.compare.verdict import TIMES, PairVerdict, verdict


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def facts(c: Comparison) -> str:
    """What ran and where, in one line."""
    first = c.models[0].info
    where = first.device
    if e := c.environment:
        where += f" ({e.gpu})" if e.gpu and first.device != "cpu" else f" ({e.cpu}, {e.cpu_count} CPUs)"
    parts = [
        _count(c.inputs, c.unit) + (f" of {_count(c.video.videos, 'video')}" if c.video else ""),
        f"{first.backend} {first.precision}",
        where,
        f"imgsz {c.settings.imgsz}, conf {c.settings.conf:g}",
    ]
    if c.labels:
        parts.append(f"labels {c.labels}")
    if c.environment:
        parts.append(c.environment.date[:10])
    return " · ".join(parts)


def bands(c: Comparison) -> list[dict[str, str]]:
    """What the reader must know before any number, each said once for the whole page."""
    out = []
    untrained = [m.info.label for m in c.models if m.info.untrained]
    if untrained:
        out.append(
            {
                "title": "Random weights",
                "text": f"{', '.join(untrained)}: built from a config, untrained (no weights file). Speed "
                "and memory are real; their boxes, agreement and accuracy mean nothing.",
            }
        )
    if input_shapes_differ(c):
        out.append(
            {
                "title": "Inputs differ",
                "text": "the models' backends fed them differently shaped inputs (see What ran): part of "
                "the difference in speed and accuracy is the input, not the model.",
            }
        )
    if c.interrupted:
        out.append({"title": "Interrupted", "text": f"{c.interruption()}."})
    return out


def _where(p: PairVerdict, c: Comparison) -> str:
    if p.map_source == "measured":
        images = next((m.accuracy.images for m in c.models if m.accuracy), 0)
        return f"on your {_count(images, 'image')}"
    return "published COCO figures, not measured here"


def pick(p: PairVerdict, c: Comparison) -> str:
    """Which model to pick, in one sentence, from what was measured."""
    fast, accurate = p.faster, p.more_accurate
    speed = f"{p.speed_ratio:.1f}{TIMES} faster here (p50{_speed_ci(p, c)})" if fast and p.speed_ratio else ""
    acc = (
        f"+{p.map_diff:.1f} mAP50-95 ({_where(p, c)}{_map_ci(p, c)})"
        if accurate and p.map_diff is not None
        else ""
    )
    if fast and accurate and fast != accurate:
        return f"Pick {fast} for speed ({speed}), {accurate} for accuracy ({acc})."
    if fast and accurate:
        return f"Pick {fast}: {speed} and {acc}."
    if fast:
        same = " with the same mAP50-95" if p.map_source in ("measured", "published") else ""
        return f"Pick {fast} when speed matters: {speed}{same}."
    if accurate:
        return f"Pick {accurate}: {acc}, about as fast."
    if p.speed_settled is False:  # the analysis could not tell them apart
        return f"{p.a} and {p.b}: no speed difference settled on {_count(p.inputs, c.unit)}."
    return f"{p.a} and {p.b} are about as fast as each other."


def _speed_ci(p: PairVerdict, c: Comparison) -> str:
    """The analysis' interval of the slower p50 over the faster one ("; 95 % CI 2.8x to 3.2x"), or ""."""
    pa = c.analysis.pair(p.a, p.b) if c.analysis else None
    iv = pa.speed_ratio if pa else None
    if pa is None or iv is None or iv.low is None or iv.high is None or iv.low <= 0:
        return ""
    low, high = (1 / iv.high, 1 / iv.low) if pa.a == p.faster else (iv.low, iv.high)
    return f"; 95 % CI {low:.1f}{TIMES} to {high:.1f}{TIMES}"


def _map_ci(p: PairVerdict, c: Comparison) -> str:
    """The interval of the more accurate model's mAP50-95 lead in points ("; 95 % CI +23.3 to +30.1"), or
    "" (no analysis, or the figures are not measured here)."""
    pa = c.analysis.pair(p.a, p.b) if c.analysis and p.map_source == "measured" else None
    iv = pa.map50_95 if pa else None
    if pa is None or iv is None or iv.low is None or iv.high is None:
        return ""
    low, high = (100 * iv.low, 100 * iv.high) if pa.a == p.more_accurate else (-100 * iv.high, -100 * iv.low)
    return f"; 95 % CI {low:+.1f} to {high:+.1f}"


def _unsettled(p: PairVerdict, figure: str) -> str | None:
    """The verdict's words for a difference it did not call ("not settled on 22 images (…)")."""
    return next((u.split(": ", 1)[1] for u in p.unsettled if u.casefold().startswith(figure)), None)


def _rows(p: PairVerdict, c: Comparison) -> list[tuple[str, str]]:
    speed = (
        f"{p.faster}, {p.speed_ratio:.1f}{TIMES} faster"
        if p.faster and p.speed_ratio
        else (_unsettled(p, "speed") or ("about the same" if p.speed_ratio else "not measured"))
    )
    memory = (
        f"{p.lighter}, {p.memory_ratio:.1f}{TIMES} less"
        if p.lighter and p.memory_ratio
        else ("about the same" if p.memory_ratio else "not measured")
    )
    if p.map_source == "untrained":
        accuracy = "not compared"  # the band above says why, once
    elif p.map_source == "none":
        accuracy = "no labels and no published figure"
    elif p.more_accurate and p.map_diff is not None:
        accuracy = f"{p.more_accurate}, +{p.map_diff:.1f} ({_where(p, c)})"
    elif unsettled := _unsettled(p, "map50-95"):
        accuracy = unsettled
    else:
        accuracy = f"the same ({_where(p, c)})"
    agreement = (
        f"{100 * p.agreement:.0f}% of boxes over {_count(p.inputs, c.unit)}"
        if p.agreement is not None
        else f"no boxes to compare over {_count(p.inputs, c.unit)}"
    )
    return [
        ("Speed (p50 latency)", speed),
        ("Memory (peak)", memory),
        ("Accuracy (mAP50-95)", accuracy),
        ("Agreement", agreement),
    ]


def summary(c: Comparison) -> list[dict[str, Any]]:
    """Per pair of models: the pick, the figures behind it, and the verdict's sentence (report.json)."""
    return [
        {"pair": f"{p.a} vs {p.b}", "pick": pick(p, c), "rows": _rows(p, c), "sentence": p.sentence}
        for p in verdict(c).pairs
    ]


def overview_note(c: Comparison) -> str:
    """What the overview plot shows, saying only what is on it."""
    if not any(overview_place(m)[1] is not None for m in c.models):  # no official model: stars only
        return (
            "Stars: mAP50-95 measured on your labels, against each model's GFLOPs counted here (at 640 px). "
            "No published family line: these models are not ultralytics' or RT-DETR's released sizes."
        )
    e = c.environment
    here = f"on this machine ({e.cpu})" if e else "on this machine"
    parts = [
        "Lines: each family's sizes, mAP50-95 on COCO val2017 and GFLOPs at 640 px as their authors publish "
        "them (https://docs.ultralytics.com/models/, https://github.com/lyuwenyu/RT-DETR).",
        f"Dots: the compared models, with the p50 latency measured {here}.",
    ]
    if any(m.info.untrained for m in c.models):
        parts.append("A hollow dot is an untrained model, placed where the trained one is.")
    if any(m.accuracy for m in c.models):
        parts.append("Stars: mAP50-95 measured on your labels.")
    parts.append("Published speeds come from other machines and are not shown.")
    return " ".join(parts)
