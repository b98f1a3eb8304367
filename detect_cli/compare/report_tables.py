"""The report's tables as plain rows (`TableData`), built once and rendered to Markdown, HTML and the
terminal alike, and the lines that describe the run and the machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from detect_cli.compare.machine import MEMORY_METHOD
from detect_cli.compare.results import Comparison, Environment, ModelResult
from detect_cli.compare.verdict import TIMES

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True, slots=True)
class TableData:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    why: str = ""  # set when the table has no rows: why (the page shows this line instead)


EMPTY = "—"  # a cell without a value; a column of nothing else is left out (`without_empty_columns`)
NAME_COLUMNS = ("model", "pair", "class")  # left-aligned text; every other column holds numbers


def numeric_columns(t: TableData) -> list[bool]:
    """Which columns hold numbers (right-aligned): every cell a number, "—", or a number with a word
    after it ("53.0 (published)")."""

    def number(cell: str) -> bool:
        try:
            float(cell.split(" ")[0])
        except ValueError:
            return cell == EMPTY
        return True

    return [h not in NAME_COLUMNS and all(number(row[k]) for row in t.rows) for k, h in enumerate(t.headers)]


def without_empty_columns(t: TableData) -> TableData:
    """`t` without the columns that hold no value in any row, said in its note; a table without rows
    becomes one line saying why (`why`), given by the builder or a plain default."""
    if not t.rows:
        return TableData(t.title, (), (), "", t.why or "nothing to show")
    keep = [k for k, h in enumerate(t.headers) if k == 0 or any(row[k] != EMPTY for row in t.rows)]
    if len(keep) == len(t.headers):
        return t
    dropped = ", ".join(h for k, h in enumerate(t.headers) if k not in keep)
    note = f"{t.note} No value for {dropped}: left out.".strip()
    rows = tuple(tuple(row[k] for k in keep) for row in t.rows)
    return TableData(t.title, tuple(t.headers[k] for k in keep), rows, note)


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return EMPTY if v is None or v != v else fmt.format(v)


def _pct(v: float | None) -> str:
    return _f(None if v is None else 100 * v, "{:.1f}")


def _accuracy_cell(m: ModelResult) -> str:
    if m.accuracy:
        return _pct(m.accuracy.map50_95)
    if m.info.published_map50_95 is not None:
        return f"{m.info.published_map50_95:.1f} (published)"
    return EMPTY


def measured_tables(c: Comparison, full: bool = True) -> list[TableData]:
    """The tables of what was measured (speed, what ran, accuracy, agreement, tracking, per class);
    `full=False` gives the key ones for the terminal. `report.tables` sets the analysis' after them."""
    out = [_speed_table(c, compact=not full)]
    if full:
        out.append(_ran_table(c))
    if c.models[0].accuracy:
        out.append(_accuracy_table(c))
    out.append(_agreement_table(c))
    if c.tracking:
        out.append(tracking_table(c))
    if full:
        if c.models[0].accuracy:
            out.append(_class_accuracy_table(c))
        out += [_class_agreement_table(c, p) for p in range(len(c.pairs))]
        out.append(_per_class_table(c))
    return out


def tracking_table(c: Comparison) -> TableData:
    """`--track`: each model's tracks, label-free stability and, with ground truth, MOTA, IDF1, HOTA."""
    t = c.tracking
    assert t is not None
    scored = any(m.mot for m in t.models)
    headers = ["model", "tracks", "tracks/min", "median length", "p10 length", "fragments", "flicker"]
    if scored:
        headers += ["MOTA", "IDF1", "HOTA", "ID switches"]
    rows = []
    for m in t.models:
        s = m.stability
        row = [
            m.label,
            str(s.tracks),
            _f(s.tracks_per_minute),
            _f(s.median_length, "{:g}"),
            _f(s.p10_length, "{:.1f}"),
            str(s.fragments),
            _pct(s.flicker) + ("" if s.flicker is None else " %"),
        ]
        if scored:
            mot = m.mot
            row += (
                [_pct(mot.mota), _pct(mot.idf1), _pct(mot.hota), str(mot.id_switches)] if mot else ["—"] * 4
            )
        rows.append(tuple(row))
    note = (
        f"Every model tracked by {t.tracker} with the same settings ({t.settings_from}) on the same frames. "
        "Lengths in processed frames a track held a box; fragments: a track that ends while a new one of "
        "its class starts within 5 frames at the same place (IoU > 0.5); flicker: the share of the tracks' "
        "lives their object was missed for one or two frames."
    )
    if scored:
        note += f" MOTA, IDF1 (IoU 0.5) and HOTA in % against {t.ground_truth}, computed by TrackEval."
    return TableData("Tracking", tuple(headers), tuple(rows), note)


def _speed_table(c: Comparison, compact: bool = False) -> TableData:
    """`compact` (the terminal) leaves out the pre- and postprocess columns. Params and GFLOPs are in
    What ran."""
    labelled = c.models[0].accuracy is not None
    stages = ("inference",) if compact else ("preprocess", "inference", "postprocess")
    rows = tuple(
        (
            m.info.label,
            *(_f(getattr(m.speed, f"{stage}_ms")) for stage in stages),
            _f(m.speed.latency_p50_ms),
            _f(m.speed.latency_p95_ms),
            _f(m.speed.images_per_s, "{:.2f}"),
            _f(m.memory.peak_mb if m.memory else None, "{:.0f}"),
            _accuracy_cell(m),
        )
        for m in c.models
    )
    first = c.models[0].info
    note = (
        f"{first.device}, {first.backend}, {first.precision}, imgsz {first.imgsz}; "
        f"timed calls per model: {c.models[0].speed.calls}, after {c.settings.warmup} warm-up runs. "
        f"Stages (pre, infer, post): means, as ultralytics times them; latency (p50, p95): the wall time "
        f"of one call on one {c.unit}; {'frames/s' if c.video else 'img/s'}: 1000 / the mean latency. "
        + memory_note(c)
    )
    if not labelled and any(m.info.published_map50_95 is not None for m in c.models):
        source = next(m.info.published_source for m in c.models if m.info.published_source)
        note += f" Published mAP50-95: the authors' COCO val figure ({source}), not measured here."
    return TableData(
        "Speed",
        (
            "model",
            *({"preprocess": "pre ms", "inference": "infer ms", "postprocess": "post ms"}[s] for s in stages),
            "p50 ms",
            "p95 ms",
            "frames/s" if c.video else "img/s",
            "peak MB",
            "mAP50-95" if labelled else "mAP50-95 COCO",
        ),
        rows,
        note,
    )


def memory_note(c: Comparison) -> str:
    """How the peak-memory column was measured (or why it is empty)."""
    measured = [m.memory for m in c.models if m.memory]
    if not measured:
        return "Peak memory: not measured (--no-memory, or the run was interrupted)."
    methods = {m.method for m in measured}
    how = "; ".join(MEMORY_METHOD[k].format(n=measured[0].images) for k in sorted(methods))
    return f"Peak MB: {how}."


def _input_cell(m: ModelResult) -> str:
    i = m.info
    if i.input_shape is None:
        return f"{i.imgsz}"
    h, w = i.input_shape
    return f"{w}{TIMES}{h} ({INPUT_RULE_SHORT.get(i.input_rule, i.input_rule)})"


INPUT_RULE_SHORT = {
    "stretch-square": "stretched square",
    "letterbox-rect": "letterbox, aspect kept",
    "letterbox-square": "letterbox, fixed square",
}


def input_shapes_differ(c: Comparison) -> bool:
    """Whether the compared models ran on different backends that fed their networks differently shaped
    inputs (an export's fixed square against PyTorch's rectangular letterbox). RT-DETR's stretch to a
    square is the model's own, said in What ran, not warned about."""
    backends = {m.info.backend for m in c.models}
    shapes = {m.info.input_shape for m in c.models if m.info.input_shape}
    return len(backends) > 1 and len(shapes) > 1


def _ran_table(c: Comparison) -> TableData:
    rows = tuple(
        (
            m.info.label,
            m.info.family,
            m.info.backend,
            m.info.precision,
            _input_cell(m),
            m.info.ran,
            _f(m.info.params_m, "{:.2f}"),
            _f(m.info.gflops),
            {True: "fused", False: "unfused", None: EMPTY}[m.info.fused],
        )
        for m in c.models
    )
    note = (
        f"Input: the network input (width{TIMES}height) for the first {c.unit}. Params and GFLOPs are "
        "ultralytics' counts on the PyTorch network (for an export: counted when it was made), GFLOPs at a "
        f"{c.settings.imgsz}{TIMES}{c.settings.imgsz} input; counted on: the network with Conv+BN folded "
        "(fused, as ultralytics predicts) or not (unfused)."
    )
    if input_shapes_differ(c):
        note += (
            " Warning: the models' inputs differ in shape (an export's fixed square against PyTorch's "
            "rectangular letterbox, or RT-DETR's stretch): speed and accuracy partly measure that."
        )
    return TableData(
        "What ran",
        (
            "model",
            "family",
            "backend",
            "precision",
            "input",
            "after the network",
            "params M",
            "GFLOPs",
            "counted on",
        ),
        rows,
        note,
    )


def _accuracy_table(c: Comparison) -> TableData:
    a0 = c.models[0].accuracy
    assert a0 is not None
    rows = tuple(
        (
            m.info.label,
            str(m.accuracy.images),
            str(m.accuracy.instances),
            _pct(m.accuracy.map50_95),
            _pct(m.accuracy.map50),
            _pct(m.accuracy.precision),
            _pct(m.accuracy.recall),
        )
        for m in c.models
        if m.accuracy
    )
    note = (
        f"Against {c.labels} (%, pycocotools). mAP from every box down to conf {a0.eval_conf:g}; "
        f"precision and recall at IoU 0.5 for boxes with conf ≥ {a0.conf:g}; means over classes."
    )
    return TableData(
        "Accuracy", ("model", "images", "instances", "mAP50-95", "mAP50", "precision", "recall"), rows, note
    )


def _agreement_table(c: Comparison) -> TableData:
    rows = tuple(
        (
            f"{p.a} vs {p.b}",
            str(p.overall.matched),
            str(p.overall.only_a),
            str(p.overall.only_b),
            _pct(p.overall.agreement),
            _f(p.overall.mean_iou, "{:.3f}"),
        )
        for p in c.pairs
    )
    note = (
        f"Over {c.pairs[0].images if c.pairs else 0} {c.unit}s, boxes with conf ≥ {c.settings.conf:g}: "
        f"matched one-to-one (same class, IoU ≥ {c.settings.match_iou:g}, most confident first). Agreement = "
        "2·matched / (boxes of A + boxes of B)."
    )
    return TableData(
        "Agreement", ("pair", "matched", "only A", "only B", "agreement %", "mean IoU"), rows, note
    )


def _class_accuracy_table(c: Comparison) -> TableData:
    headers = ["class", "instances"]
    for m in c.models:
        headers += [f"{m.info.label} {k}" for k in ("mAP50-95", "mAP50", "P", "R")]
    per_model = [{r.class_name: r for r in m.accuracy.per_class} for m in c.models if m.accuracy]
    names = (
        [r.class_name for r in c.models[0].accuracy.per_class if r.instances] if c.models[0].accuracy else []
    )
    rows = []
    for n in names:
        row = [n, str(per_model[0][n].instances)]
        for pm in per_model:
            row += [_pct(pm[n].map50_95), _pct(pm[n].map50), _pct(pm[n].precision), _pct(pm[n].recall)]
        rows.append(tuple(row))
    return TableData(
        "Accuracy per class",
        tuple(headers),
        tuple(rows),
        "Classes with labels (%). P and R: precision and recall at IoU 0.5, boxes with conf ≥ "
        f"{c.settings.conf:g}.",
    )


def _class_agreement_table(c: Comparison, index: int, top: int = 25) -> TableData:
    p = c.pairs[index]
    by_count = sorted(p.per_class, key=lambda r: -(2 * r.matched + r.only_a + r.only_b))[:top]
    rows = tuple(
        (
            r.class_name,
            str(r.matched),
            str(r.only_a),
            str(r.only_b),
            _pct(r.agreement),
            _f(r.mean_iou, "{:.3f}"),
        )
        for r in by_count
    )
    return TableData(
        f"Agreement per class: {p.a} vs {p.b}",
        ("class", "matched", f"only {p.a}", f"only {p.b}", "agreement %", "mean IoU"),
        rows,
        f"The {top} classes with most boxes." if len(p.per_class) > top else "",
        why=f"no box at conf ≥ {c.settings.conf:g} from {p.a} or {p.b}",
    )


def _per_class_table(c: Comparison, top: int = 25) -> TableData:
    totals: dict[str, int] = {}
    for m in c.models:
        for n, k in m.detections_per_class.items():
            totals[n] = totals.get(n, 0) + k
    names = sorted(totals, key=lambda n: -totals[n])[:top]
    rows = tuple((n, *(str(m.detections_per_class.get(n, 0)) for m in c.models)) for n in names)
    return TableData(
        "Detections per class",
        ("class", *(m.info.label for m in c.models)),
        rows,
        f"conf ≥ {c.settings.conf:g}" + (f"; the {top} most frequent classes." if len(totals) > top else "."),
        why=f"no model found a box at conf ≥ {c.settings.conf:g}",
    )


def rich_table(t: TableData) -> Table:
    """One table for the terminal."""
    from rich.table import Table

    table = Table(title=t.title, title_justify="left", caption=t.note or None, caption_justify="left")
    for k, h in enumerate(t.headers):
        if h in NAME_COLUMNS:
            # Never cut a name: two models can share a long prefix (rtdetr-l-seed0, rtdetr-x-seed0).
            # A pair ("a vs b") may wrap between its names, never inside one.
            words = [w for row in t.rows for w in (row[k].split(" vs ") if h == "pair" else [row[k]])]
            longest = max((len(w) for w in words), default=0)
            table.add_column(h, justify="left", no_wrap=h != "pair", min_width=max(longest, len(h)))
        else:
            table.add_column(h, justify="right")
    for row in t.rows:
        table.add_row(*row)
    return table


def run_lines(c: Comparison) -> list[str]:
    s, first = c.settings, c.models[0].info
    inputs = f"Inputs: {c.inputs} ({len(c.failed)} failed)"
    if v := c.video:
        stride = "every frame" if v.vid_stride == 1 else f"1 frame in {v.vid_stride}"
        most = f", at most {v.max_frames} per video" if v.max_frames else ""
        inputs = (
            f"Inputs: {c.inputs} frames ({len(c.failed)} failed) of {v.videos} "
            f"video{'s' if v.videos != 1 else ''}, {stride}{most}"
        )
    lines = [
        f"Models: {', '.join(f'{m.info.label} ({m.info.location})' for m in c.models)}",
        f"{inputs}; device {first.device}, backend {first.backend}, "
        f"precision {first.precision}, imgsz {s.imgsz}, conf {s.conf:g}, warm-up {s.warmup}, runs {s.runs}",
    ]
    if c.video and c.video.side_by_side:
        lines.append(f"Side-by-side video: {', '.join(c.video.side_by_side)}, codec {c.video.codec}")
    if c.labels:
        lines.append(f"Labels: {c.labels}")
    lines += [f"Note: {n}" for n in c.notes]
    if c.interrupted:
        lines.append(f"Interrupted: {c.interruption()}")
    lines += [f"Failed: {src}: {err}" for src, err in c.failed[:10]]
    return lines


def environment_lines(e: Environment | None) -> list[str]:
    if e is None:
        return []
    threads = f"{e.cpu_count} logical CPUs" if e.cpu_count else "CPUs unknown"
    if e.torch_threads:
        threads += f", torch threads {e.torch_threads}"
    lines = [f"CPU: {e.cpu} ({threads})"]
    if e.gpu:
        lines.append(f"GPU: {e.gpu}, driver {e.gpu_driver or 'unknown'}, CUDA {e.cuda or 'unknown'}")
    lines += [
        f"OS: {e.os}; Python {e.python}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in e.versions.items()),
        f"Date: {e.date}",
        f"Command: {e.command}" if e.command else "Command: (not recorded)",
    ]
    return lines
