"""The analysis (analysis.py) as tables: how sure each figure is, fair operating points, where each model
wins, error types and the duplicate audit. Rows are plain `TableData` (rendered by report.py to Markdown,
HTML and the terminal alike), set after report_tables' by `report.tables`; the analysis' plots are
report_plots'."""

from __future__ import annotations

from detect_cli.compare.bootstrap import Interval
from detect_cli.compare.report_tables import TableData
from detect_cli.compare.results import Comparison
from detect_cli.compare.verdict import MIN_SETTLE, called


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if v is None or v != v else fmt.format(v)


def _ci(iv: Interval, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
    if iv.low is None or iv.high is None:
        return iv.note or "—"
    return f"{fmt.format(scale * iv.low)} to {fmt.format(scale * iv.high)}"


def _settled(iv: Interval, unit: str) -> str:
    if iv.kind == "level":
        return ""
    if iv.low is None:
        return "no interval"
    if called(iv):
        return "yes"
    if iv.settled:
        return f"too few (< {MIN_SETTLE})"
    return f"no (~{iv.pictures_to_settle:,} needed)" if iv.pictures_to_settle else "no"


def interval_table(c: Comparison) -> TableData | None:
    """Every pair's differences and each model's p50, with their 95 % intervals."""
    a = c.analysis
    if a is None:
        return None
    rows = []
    for m in a.models:
        iv = m.latency_p50
        rows.append((m.model, "p50 ms", _f(iv.estimate), _ci(iv), str(iv.pictures), ""))
    for p in a.pairs:
        name = f"{p.a} vs {p.b}"
        figures = [(p.speed_ratio, "p50 A/B", 1.0, "{:.2f}")]
        if p.map50_95 is not None and p.map50 is not None:
            figures += [(p.map50_95, "mAP50-95 A-B", 100.0, "{:+.1f}")]
            figures += [(p.map50, "mAP50 A-B", 100.0, "{:+.1f}")]
        figures.append((p.agreement, "agreement %", 100.0, "{:.1f}"))
        for iv, label, scale, fmt in figures:
            est = None if iv.estimate is None else scale * iv.estimate
            rows.append(
                (name, label, _f(est, fmt), _ci(iv, scale, fmt), str(iv.pictures), _settled(iv, c.unit))
            )
    note = (
        f"95 % percentile intervals from {a.resamples:,} bootstrap resamples (seed {a.seed}) of the "
        f"{c.unit}s, the same draw for both models (paired). A difference is settled when its interval "
        f"excludes 0, a ratio when it excludes 1, on at least {MIN_SETTLE} {c.unit}s (or timed calls); "
        "'~N would settle it' assumes the difference stays and its "
        "spread shrinks as 1/√n. p50 A/B above 1: the first model is slower; mAP differences in points."
    )
    if a.notes:
        note += " " + " ".join(n[0].upper() + n[1:] + "." for n in a.notes)
    return TableData(
        "How sure each figure is", ("pair", "figure", "value", "95 % CI", "n", "settled"), tuple(rows), note
    )


def operating_table(c: Comparison) -> TableData | None:
    """With labels: each model's F1-optimal threshold, its F1 at --conf, recall at equal precision."""
    a = c.analysis
    if a is None or not a.labelled:
        return None
    ep = a.equal_precision
    rows = []
    for m in a.models:
        if m.curve is None or m.conf_check is None:
            continue
        b, k = m.curve.best, m.conf_check
        at = ep.points.get(m.model) if ep else None
        rows.append(
            (
                m.model,
                f"{b.conf:.2f}",
                _f(100 * b.precision),
                _f(100 * b.recall),
                f"{b.f1:.3f}",
                f"{k.at_conf.f1:.3f}",
                "far" if k.far else "near",
                _f(100 * at.recall if at else None),
            )
        )
    note = (
        "Precision, recall (%) and F1 at IoU 0.5, class means, for the boxes at or above a threshold; the "
        f"best threshold maximizes F1. --conf {c.settings.conf:g} is 'far' when its F1 is more than 0.05 "
        "below the best."
    )
    if ep:
        note += (
            f" Recall at equal precision: each model's highest recall where its precision is at least "
            f"{100 * ep.precision:.1f}% (the lower of the models' precisions at their best thresholds)."
        )
    return TableData(
        "Fair operating points",
        ("model", "best conf", "P %", "R %", "F1 best", f"F1 at {c.settings.conf:g}", "--conf", "R at =P %"),
        tuple(rows),
        note,
    )


def threshold_table(c: Comparison) -> TableData | None:
    """Without labels: boxes per picture as the threshold moves, per model."""
    a = c.analysis
    if a is None or a.labelled or not a.models or a.models[0].scores is None:
        return None
    shown = (0.25, 0.5, 0.75, 0.9)
    rows = []
    for m in a.models:
        s = m.scores
        if s is None:
            continue
        at = dict(zip(s.thresholds, s.boxes_per_picture, strict=True))
        rows.append((m.model, *(_f(at.get(t), "{:.2f}") for t in shown), _f(m.boxes.median, "{:g}")))
    return TableData(
        "Boxes per picture as the threshold moves",
        ("model", *(f"≥ {t:g}" for t in shown), f"median at {c.settings.conf:g}"),
        tuple(rows),
        f"Mean boxes per {c.unit} scored at or above each threshold. The run keeps boxes at or above --conf "
        f"{c.settings.conf:g}, so lower thresholds are not shown.",
    )


def slice_table(c: Comparison) -> TableData | None:
    """Where each model wins: every slice difference with its interval (labels), or agreement by box
    size and by boxes per picture (no labels)."""
    a = c.analysis
    if a is None or not a.pairs:
        return None
    rows = []
    if a.labelled:
        for p in a.pairs:
            for s in (*p.sizes, *p.clutter, *p.classes):
                d = s.difference
                rows.append(
                    (
                        f"{p.a} vs {p.b}",
                        s.where.removeprefix("on "),
                        _f(None if s.a_value is None else 100 * s.a_value),
                        _f(None if s.b_value is None else 100 * s.b_value),
                        _f(None if d.estimate is None else 100 * d.estimate, "{:+.1f}"),
                        _ci(d, 100.0, "{:+.1f}"),
                        str(d.pictures),
                        _settled(d, c.unit),
                    )
                )
        return TableData(
            "Where each model wins",
            ("pair", "slice", "A", "B", "A-B", "95 % CI", "n", "settled"),
            tuple(rows),
            "mAP50-95 (%) by object size (COCO: small < 32², medium < 96² px, as pycocotools' APs/APm/APl), "
            "by labelled objects per picture, and AP50-95 by class; paired bootstrap intervals, each slice's "
            "pictures resampled among themselves.",
        )
    for p in a.pairs:
        for s in (*p.agreement_by_size, *p.agreement_by_boxes):
            where = f"{s.slice} boxes" if s.kind == "size" else f"{s.slice} boxes per picture"
            iv = s.agreement
            rows.append(
                (
                    f"{p.a} vs {p.b}",
                    where,
                    str(s.matched),
                    str(s.only_a),
                    str(s.only_b),
                    _f(None if iv.estimate is None else 100 * iv.estimate),
                    _ci(iv, 100.0),
                )
            )
    return TableData(
        "Where they agree",
        ("pair", "slice", "matched", "only A", "only B", "agreement %", "95 % CI"),
        tuple(rows),
        "Agreement by box size (a matched pair by the mean of its two areas) and by boxes per picture.",
    )


def error_table(c: Comparison) -> TableData | None:
    """TIDE's error types per model (labels)."""
    a = c.analysis
    if a is None or not a.labelled:
        return None
    keys = ("true_positives", "false_positives", "classification", "localization", "both", "duplicate")
    keys += ("background", "missed", "explained")
    rows = tuple(
        (m.model, str(m.errors.labels), *(str(getattr(m.errors, k)) for k in keys))
        for m in a.models
        if m.errors is not None
    )
    confusions = [
        f"{m.model}: " + ", ".join(f"{box} on {label} x{n}" for box, label, n in m.errors.confusions[:3])
        for m in a.models
        if m.errors is not None and m.errors.confusions
    ]
    note = (
        f"Boxes at or above --conf {c.settings.conf:g} against the labels (TIDE, Bolya et al. 2020): every "
        "false positive in one category (localization: right class, IoU 0.1 to 0.5; classification: wrong "
        "class, IoU ≥ 0.5; both; duplicate: a label already found; background: IoU < 0.1 with every "
        "label), every label found, missed, or explained by a localization or classification error."
    )
    if confusions:
        note += " Most confused: " + "; ".join(confusions) + "."
    headers = ("model", "labels", "TP", "FP", "class", "loc", "both", "dupe", "bkg", "missed", "explained")
    return TableData("Error types", headers, rows, note)


def duplicate_table(c: Comparison) -> TableData | None:
    """The duplicate audit of NMS-free models: twins, and with labels what NMS afterwards changes."""
    a = c.analysis
    if a is None:
        return None
    rows = []
    for m in a.models:
        d = m.duplicates
        if d is None:
            continue
        t, n = d.twins, d.nms
        share = None if t.box_share is None else 100 * t.box_share
        row = (m.model, str(t.boxes), str(t.twin_pairs), _f(share))
        if n is not None:
            row += (
                str(n.removed),
                f"{100 * n.map50_95:.1f} → {100 * n.map50_95_nms:.1f}",
                f"{100 * n.precision:.1f} → {100 * n.precision_nms:.1f}",
                f"{100 * n.recall:.1f} → {100 * n.recall_nms:.1f}",
            )
        else:
            row += ("—", "—", "—", "—")
        rows.append(row)
    if not rows:
        return None
    return TableData(
        "Duplicate audit (NMS-free models)",
        ("model", "boxes", "twin pairs", "boxes with a twin %", "NMS removes", "mAP50-95", "P %", "R %"),
        tuple(rows),
        f"Boxes at or above --conf {c.settings.conf:g}; twins: same-class boxes overlapping at IoU > 0.7. "
        "With labels: class-wise NMS at the model's --iou applied afterwards (what --nms does), "
        "before → after.",
    )


def boxes_table(c: Comparison) -> TableData | None:
    a = c.analysis
    if a is None:
        return None
    rows = tuple(
        (
            m.model,
            str(m.boxes.boxes),
            str(m.boxes.empty),
            _f(m.boxes.mean, "{:.2f}"),
            _f(m.boxes.median, "{:g}"),
            str(m.boxes.max),
        )
        for m in a.models
    )
    return TableData(
        "Boxes per picture",
        ("model", "boxes", f"{c.unit}s with none", "mean", "median", "max"),
        rows,
        f"Boxes at or above --conf {c.settings.conf:g} of the shared classes, per {c.unit}.",
    )


def analysis_tables(c: Comparison, full: bool = True) -> list[TableData]:
    """The analysis' tables; `full=False`: only how sure each figure is (the terminal)."""
    makers = (interval_table,) if not full else (interval_table, operating_table, threshold_table)
    if full:
        makers += (slice_table, error_table, duplicate_table, boxes_table)
    return [t for make in makers if (t := make(c)) is not None and t.rows]
