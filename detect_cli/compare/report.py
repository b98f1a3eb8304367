"""Presenting a `Comparison`: report.json, report.md, a self-contained report.html (plots and pictures
embedded as base64, no external reference), PNG plots, and the terminal tables. What is written during
the run (detections, side-by-side pictures and videos) is outputs.py's.

Every table is built once as plain rows (`tables`) and rendered to Markdown, HTML and the terminal alike.
matplotlib is imported lazily with its Agg backend: no display is needed.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detect_cli.compare.machine import MEMORY_METHOD
from detect_cli.compare.results import P95_MIN_CALLS, Comparison, Environment, ModelResult, Picture
from detect_cli.compare.verdict import TIMES, verdict
from detect_cli.writers import atomic_write_bytes, json_text

if TYPE_CHECKING:
    from rich.table import Table

REPORT_FILES = ("report.json", "report.md", "report.html")
REPORT_RECORD = "report.json"  # a folder holding it holds a comparison
HTML_PICTURES = 4  # side-by-side pictures embedded in report.html (all of them are written as files)
HTML_PICTURE_WIDTH = 1600  # px: embedded pictures are scaled down to keep report.html small
GALLERY_THUMBS = 40  # side-by-sides embedded as thumbnails in report.html; the others are linked
GALLERY_BYTES = 20 * 2**20  # ... and at most this many bytes of thumbnails
GALLERY_WIDTH = 560  # px: a thumbnail's width
MD_GALLERY_LINKS = 200  # side-by-sides listed in report.md


# --- tables ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableData:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if v is None or v != v else fmt.format(v)


def _pct(v: float | None) -> str:
    return _f(None if v is None else 100 * v, "{:.1f}")


def _accuracy_cell(m: ModelResult) -> str:
    if m.accuracy:
        return _pct(m.accuracy.map50_95)
    if m.info.published_map50_95 is not None:
        return f"{m.info.published_map50_95:.1f} (published)"
    return "—"


def tables(c: Comparison, full: bool = True) -> list[TableData]:
    """The report's tables; `full=False` gives the key ones for the terminal."""
    out = [_speed_table(c, compact=not full)]
    if full:
        out.append(_ran_table(c))
    if c.models[0].accuracy:
        out.append(_accuracy_table(c))
    out.append(_agreement_table(c))
    if full:
        if c.models[0].accuracy:
            out.append(_class_accuracy_table(c))
        out += [_class_agreement_table(c, p) for p in range(len(c.pairs))]
        out.append(_per_class_table(c))
    from detect_cli.compare import report_verdict  # it builds on TableData

    return out + report_verdict.tables(c, full)


def _speed_table(c: Comparison, compact: bool = False) -> TableData:
    """`compact` (the terminal) leaves out params, GFLOPs and the pre- and postprocess columns."""
    labelled = c.models[0].accuracy is not None
    stages = ("inference",) if compact else ("preprocess", "inference", "postprocess")
    rows = tuple(
        (
            m.info.label,
            *(() if compact else (_f(m.info.params_m), _f(m.info.gflops))),
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
        f"timed calls per model: {c.models[0].speed.calls}, after {c.settings.warmup} warm-up runs"
        + (
            f" (--runs raised from {c.settings.runs_asked} to {c.settings.runs} to reach {P95_MIN_CALLS} "
            "timed calls; p95 needs them)"
            if c.settings.runs_asked is not None
            else ""
        )
        + ". "
        f"Latency is the wall time of one call on one {c.unit}. " + memory_note(c)
    )
    if not labelled and any(m.info.published_map50_95 is not None for m in c.models):
        source = next(m.info.published_source for m in c.models if m.info.published_source)
        note += f" Published mAP50-95: the authors' COCO val figure ({source}), not measured here."
    return TableData(
        "Speed",
        (
            "model",
            *(() if compact else ("params M", "GFLOPs")),
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
            {True: "fused", False: "unfused", None: "—"}[m.info.fused],
        )
        for m in c.models
    )
    note = (
        f"Input: the network input (width{TIMES}height) for the first {c.unit}. Params and GFLOPs are "
        f"ultralytics' counts on the network as it ran (fused: Conv+BN folded, as ultralytics predicts), "
        f"GFLOPs at a {c.settings.imgsz}{TIMES}{c.settings.imgsz} input; none for exported models."
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
            "count",
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
    )


def rich_tables(c: Comparison) -> list[Table]:
    """The key tables for the terminal."""
    from rich.table import Table

    out = []
    for t in tables(c, full=False):
        table = Table(title=t.title, title_justify="left", caption=t.note or None, caption_justify="left")
        for k, h in enumerate(t.headers):
            if h in ("model", "pair", "class"):
                # Never cut a name: two models can share a long prefix (rtdetr-l-seed0, rtdetr-x-seed0).
                # A pair ("a vs b") may wrap between its names, never inside one.
                words = [w for row in t.rows for w in (row[k].split(" vs ") if h == "pair" else [row[k]])]
                longest = max((len(w) for w in words), default=0)
                table.add_column(h, justify="left", no_wrap=h != "pair", min_width=max(longest, len(h)))
            else:
                table.add_column(h, justify="right")
        for row in t.rows:
            table.add_row(*row)
        out.append(table)
    return out


# --- plots ----------------------------------------------------------------------------------------


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height), dpi=110, layout="constrained")


def _png(plt, fig) -> bytes:  # type: ignore[no-untyped-def]
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def plot_speed(c: Comparison) -> bytes:
    """ms per image by model, stacked by stage."""
    plt, (fig, ax) = _figure(7, 0.6 * len(c.models) + 1.6)
    labels = [m.info.label for m in c.models][::-1]
    left = [0.0] * len(labels)
    stages = (("preprocess", "#8da0cb"), ("inference", "#fc8d62"), ("postprocess", "#66c2a5"))
    for stage, color in stages:
        values = [getattr(m.speed, f"{stage}_ms") for m in c.models][::-1]
        ax.barh(labels, values, left=left, color=color, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} ms", va="center")
    ax.set_xlabel(f"ms per {c.unit} (mean)")
    ax.set_xlim(0, max(left) * 1.25 if max(left) > 0 else 1)
    ax.set_title("Speed by stage")
    ax.legend(loc="lower right", fontsize="small")
    return _png(plt, fig)


def plot_accuracy_vs_speed(c: Comparison) -> bytes | None:
    """mAP50-95 (measured on the labels, else published COCO figures) against ms per image."""
    points = []
    for m in c.models:
        if m.accuracy:
            points.append((m.info.label, m.speed.latency_mean_ms, 100 * m.accuracy.map50_95))
        elif m.info.published_map50_95 is not None:
            points.append((m.info.label, m.speed.latency_mean_ms, m.info.published_map50_95))
    if not points:
        return None
    measured = c.models[0].accuracy is not None
    plt, (fig, ax) = _figure(6, 4)
    for label, x, y in points:
        ax.scatter([x], [y], s=60)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(f"ms per {c.unit} (measured here)")
    ax.set_ylabel("mAP50-95 (%)" + ("" if measured else ", published on COCO val"))
    ax.set_title("Accuracy vs speed" + ("" if measured else " (accuracy: published, not measured)"))
    ax.margins(0.25)
    ax.set_xlim(left=0)  # a latency is never negative: the axis starts at 0
    ax.grid(alpha=0.3)
    return _png(plt, fig)


def plot_memory(c: Comparison) -> bytes | None:
    """Peak memory by model (machine.py), when it was measured."""
    measured = [(m.info.label, m.memory.peak_mb) for m in c.models if m.memory]
    if not measured:
        return None
    plt, (fig, ax) = _figure(7, 0.6 * len(measured) + 1.6)
    labels = [label for label, _ in measured][::-1]
    values = [v for _, v in measured][::-1]
    ax.barh(labels, values, color="#8da0cb")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.0f} MB", va="center")
    methods = {m.memory.method for m in c.models if m.memory}
    ax.set_xlabel("peak MB, " + ("GPU memory allocated" if methods == {"cuda"} else "resident memory"))
    ax.set_xlim(0, max(max(values) * 1.25, 1))
    ax.set_title("Peak memory per model (each alone in its own process)")
    return _png(plt, fig)


def plot_detections_per_class(c: Comparison, top: int = 15) -> bytes:
    """Detections per class by model, for the most frequent classes."""
    import numpy as np

    totals: dict[str, int] = {}
    for m in c.models:
        for n, k in m.detections_per_class.items():
            totals[n] = totals.get(n, 0) + k
    names = sorted(totals, key=lambda n: -totals[n])[:top]
    plt, (fig, ax) = _figure(max(6, 0.55 * len(names) * len(c.models) ** 0.5 + 2), 4)
    x = np.arange(len(names))
    width = 0.8 / len(c.models)
    for k, m in enumerate(c.models):
        ax.bar(
            x + k * width - 0.4 + width / 2,
            [m.detections_per_class.get(n, 0) for n in names],
            width,
            label=m.info.label,
        )
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylabel(f"detections (conf ≥ {c.settings.conf:g})")
    ax.set_title("Detections per class" + (f" (top {top})" if len(totals) > top else ""))
    ax.legend(fontsize="small")
    if not names:
        ax.set_ylim(0, 1)  # an empty axis, not one centred on zero
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
    return _png(plt, fig)


def make_plots(c: Comparison) -> dict[str, bytes]:
    plots = {"speed.png": plot_speed(c)}
    if (memory := plot_memory(c)) is not None:
        plots["memory.png"] = memory
    if (accuracy := plot_accuracy_vs_speed(c)) is not None:
        plots["accuracy_vs_speed.png"] = accuracy
    plots["detections_per_class.png"] = plot_detections_per_class(c)
    from detect_cli.compare import report_verdict

    return plots | report_verdict.plots(c)


# --- documents ------------------------------------------------------------------------------------


def _run_lines(c: Comparison) -> list[str]:
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
    untrained = [m.info.label for m in c.models if m.info.untrained]
    if untrained:
        lines.append(
            f"Untrained (random weights, built from a config): {', '.join(untrained)}: "
            "their detections and accuracy are meaningless; their speed and memory are real"
        )
    if input_shapes_differ(c):
        lines.append(
            "Warning: the models' backends fed them differently shaped inputs (see What ran): part of the "
            "difference in speed and accuracy is the input, not the model"
        )
    lines += [f"Note: {n}" for n in c.notes]
    if c.interrupted:
        lines.append("Interrupted: these numbers cover the inputs done before Ctrl-C")
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


def report_dict(c: Comparison) -> dict[str, object]:
    """report.json: the comparison with its verdict."""
    return {"verdict": verdict(c).to_dict(), **c.to_dict()}


def terminal_lines(c: Comparison) -> list[str]:
    """The verdict and the machine, in a few lines, for the terminal above the tables."""
    v = verdict(c)
    lines = ["Verdict:", *(f"  {line}" for line in v.lines)]
    if c.environment:
        lines.append(f"On: {environment_lines(c.environment)[0]}")
    if input_shapes_differ(c):
        lines.append("Warning: the models' inputs differ in shape (see report.html, What ran)")
    return lines


# --- the gallery: every side-by-side, where the models disagree most first ---------------------------


@dataclass(frozen=True, slots=True)
class GalleryItem:
    source: str
    path: str  # the side-by-side picture, relative to the report folder
    agreement: float | None
    boxes: int
    thumbnail: bytes | None = None  # JPEG, embedded in report.html


def gallery(c: Comparison, out: Path | None) -> list[GalleryItem]:
    """The side-by-side pictures written for this comparison, the lowest agreement first (inputs where
    no model found a box last); the first GALLERY_THUMBS (within GALLERY_BYTES) get a thumbnail."""
    if out is None:
        return []
    items = []
    for row in c.per_input:
        rel = Path("side-by-side", row.rel_path).with_suffix(".jpg").as_posix()
        if (out / rel).is_file():
            items.append(GalleryItem(row.source, rel, row.agreement, row.boxes))
    items.sort(key=lambda g: (g.agreement is None, g.agreement or 0.0, g.source))
    total = 0
    for k, item in enumerate(items[:GALLERY_THUMBS]):
        thumb = _thumbnail(out / item.path)
        if thumb is None or total + len(thumb) > GALLERY_BYTES:
            break
        total += len(thumb)
        items[k] = GalleryItem(item.source, item.path, item.agreement, item.boxes, thumb)
    return items


def _thumbnail(path: Path) -> bytes | None:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > GALLERY_WIDTH:
        image = cv2.resize(image, (GALLERY_WIDTH, round(h * GALLERY_WIDTH / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else None


def _agreement_text(g: GalleryItem) -> str:
    if g.agreement is None:
        return "no boxes"
    return f"agreement {100 * g.agreement:.0f}%, {g.boxes} boxes"


GALLERY_NOTE = (
    "Every side-by-side picture, the inputs where the models agree least first (agreement: 2·matched / "
    "boxes of both, averaged over the pairs). The first {thumbs} are shown here (at most "
    f"{GALLERY_THUMBS} thumbnails or {GALLERY_BYTES // 2**20} MB); each links to the full picture in "
    "side-by-side/."
)


# --- documents: Markdown --------------------------------------------------------------------------


def _md_table(t: TableData) -> str:
    esc = [tuple(cell.replace("|", "\\|") for cell in row) for row in (t.headers, *t.rows)]
    lines = [f"## {t.title}", ""]
    lines.append("| " + " | ".join(esc[0]) + " |")
    lines.append("|" + "|".join("---" if h in ("model", "pair", "class") else "--:" for h in t.headers) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines)


def _md_link(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def markdown(
    c: Comparison, plots: Sequence[str], pictures: Sequence[str], items: Sequence[GalleryItem] = ()
) -> str:
    parts = ["# detect compare", "", "## Verdict", "", *[f"- {line}" for line in verdict(c).lines], ""]
    parts += ["## Run", "", *[f"- {line}" for line in _run_lines(c)], ""]
    if c.environment:
        parts += ["## Environment", "", *[f"- {line}" for line in environment_lines(c.environment)], ""]
    parts += [*(_md_table(t) + "\n" for t in tables(c))]
    if plots:
        parts += ["## Plots", "", *[f"![{Path(p).stem}]({p})" for p in plots], ""]
    if c.video and c.video.side_by_side:
        parts += ["## Side-by-side video", "", *[f"- [{p}]({_md_link(p)})" for p in c.video.side_by_side], ""]
    if items:
        parts += ["## Where they disagree", "", "The lowest agreement first.", ""]
        parts += [
            f"- [{g.source}]({_md_link(g.path)}): {_agreement_text(g)}" for g in items[:MD_GALLERY_LINKS]
        ]
        if len(items) > MD_GALLERY_LINKS:
            parts.append(f"- … and {len(items) - MD_GALLERY_LINKS} more in side-by-side/")
        parts.append("")
    elif pictures:
        parts += ["## Side by side", "", *[f"![{Path(p).name}]({_md_link(p)})" for p in pictures], ""]
    return "\n".join(parts) + "\n"


# --- documents: HTML ------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 .3em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.note{color:#555;font-size:12px;margin:0 0 1.5em}img{max-width:100%;border:1px solid #ddd}
figure{margin:1em 0}figcaption{color:#555;font-size:12px}ul.run,ul.env{color:#333}
div.verdict{background:#f4f8ff;border:1px solid #b8cdf0;border-radius:6px;padding:.6em 1.2em;margin:1em 0}
div.verdict li{margin:.2em 0}p.warn,div.warn{background:#fff4e0;border:1px solid #e8b860;padding:.4em .8em}
div.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
div.gallery figure{margin:0}video{max-width:100%;border:1px solid #ddd}
"""


def _html_table(t: TableData) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if h in ('model', 'pair', 'class') else ' class=n'}>{html.escape(v)}</td>"
            for h, v in zip(t.headers, row, strict=True)
        )
        + "</tr>"
        for row in t.rows
    )
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<h2>{html.escape(t.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _href(path: str) -> str:
    """A relative link to a file beside the report (each path segment percent-encoded)."""
    import urllib.parse

    return html.escape(urllib.parse.quote(path, safe="/"))


def _poster(c: Comparison, video_path: str, pictures: Sequence[Picture]) -> Picture | None:
    """A kept picture of this video (the kept pictures' captions start with their source)."""
    stem = Path(video_path).name
    return next((p for p in pictures if Path(p.source.split(", frame ")[0]).name in stem), None) or (
        pictures[0] if pictures else None
    )


def _html_video(c: Comparison, pictures: Sequence[Picture]) -> list[str]:
    v = c.video
    if v is None or not v.side_by_side:
        return []
    parts = ["<h2>Side-by-side video</h2>"]
    for path in v.side_by_side:
        if v.playable:
            poster = _poster(c, path, pictures)
            attr = f' poster="{_data_uri(poster.jpeg, "image/jpeg")}"' if poster else ""
            parts.append(
                f'<figure><video controls preload="metadata"{attr} src="{_href(path)}"></video>'
                f'<figcaption><a href="{_href(path)}">{html.escape(path)}</a>, {html.escape(v.codec or "")}, '
                "the file beside this report</figcaption></figure>"
            )
        else:
            parts.append(
                f'<p><a href="{_href(path)}">{html.escape(path)}</a> ({html.escape(v.codec or "")}: browsers '
                "do not play this codec; open it in a video player)</p>"
            )
    return parts


def _html_gallery(items: Sequence[GalleryItem]) -> list[str]:
    shown = [g for g in items if g.thumbnail]
    parts = [
        "<h2>Where they disagree</h2>",
        f'<p class="note">{html.escape(GALLERY_NOTE.format(thumbs=len(shown)))}</p>',
    ]
    parts.append('<div class="gallery">')
    parts += [
        f'<figure><a href="{_href(g.path)}"><img alt="{html.escape(g.source)}" '
        f'src="{_data_uri(g.thumbnail, "image/jpeg")}"></a>'  # type: ignore[arg-type]
        f"<figcaption>{html.escape(g.source)}: {_agreement_text(g)}</figcaption></figure>"
        for g in shown
    ]
    parts.append("</div>")
    rest = items[len(shown) :]
    if rest:
        parts.append(f"<p>{len(rest)} more, linked:</p><ul>")
        parts += [
            f'<li><a href="{_href(g.path)}">{html.escape(g.source)}</a>: {_agreement_text(g)}</li>'
            for g in rest
        ]
        parts.append("</ul>")
    return parts


EXPLAIN_NOTE = (
    "Per picture: RT-DETR's decoder sampling points for each detection (where its last decoder layer "
    "looked, sized by weight) | RT-DETR's encoder attention from each box centre | the YOLO model's "
    "EigenCAM activation map. See `detect explain --help`."
)


def _md_explained(paths: Sequence[str]) -> str:
    if not paths:
        return ""
    lines = ["## Where each model looked (--explain)", "", EXPLAIN_NOTE, ""]
    return "\n".join([*lines, *(f"![{Path(p).name}]({_md_link(p)})" for p in paths), ""]) + "\n"


def small_jpeg_file(path: Path, width: int = HTML_PICTURE_WIDTH) -> bytes:
    """A picture file scaled down to `width` and encoded as JPEG, to embed; b"" when it cannot be read."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        return b""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def _html_explained(paths: Sequence[Path]) -> list[str]:
    """The --explain pictures, scaled down and embedded (the full ones are in explain/)."""
    if not paths:
        return []
    parts = [
        "<h2>Where each model looked (--explain)</h2>",
        f'<p class="note">{html.escape(EXPLAIN_NOTE)}</p>',
    ]
    for path in paths:
        data = small_jpeg_file(path)
        if data:
            parts.append(
                f'<figure><img alt="{html.escape(path.name)}" src="{_data_uri(data, "image/jpeg")}">'
                f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
            )
    return parts


def html_report(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture],
    items: Sequence[GalleryItem] = (),
    explained: Sequence[Path] = (),
) -> str:
    """One file that opens offline: plots and thumbnails are data: URIs, the style is inline, nothing
    is fetched; the gallery's thumbnails and the side-by-side video link to the files beside it."""
    title = html.escape(" vs ".join(m.info.label for m in c.models))
    v = verdict(c)
    run = "".join(f"<li>{html.escape(line)}</li>" for line in _run_lines(c))
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>detect compare: {title}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>detect compare: {title}</h1>",
    ]
    if any(m.info.untrained for m in c.models):
        warning = v.headline[0].removeprefix("Random weights").lstrip(" .:")
        parts.append(f'<p class="warn"><b>Random weights</b> {html.escape(warning)}</p>')
    parts.append(
        '<div class="verdict"><h2>Verdict</h2><ul>'
        + "".join(f"<li>{html.escape(line)}</li>" for line in v.lines)
        + "</ul></div>"
    )
    if input_shapes_differ(c):
        parts.append(
            '<p class="warn">Warning: the models\' backends fed them differently shaped inputs (see What '
            "ran): part of the difference in speed and accuracy is the input, not the model.</p>"
        )
    parts.append(f'<h2>Run</h2><ul class="run">{run}</ul>')
    if c.environment:
        env = "".join(f"<li>{html.escape(line)}</li>" for line in environment_lines(c.environment))
        parts.append(f'<h2>Environment</h2><ul class="env">{env}</ul>')
    parts += [
        *(_html_table(t) for t in tables(c)),
        "<h2>Plots</h2>",
        *(
            f'<figure><img alt="{html.escape(name)}" src="{_data_uri(png, "image/png")}"></figure>'
            for name, png in plots.items()
        ),
    ]
    parts += _html_video(c, pictures)
    if items:
        parts += _html_gallery(items)
    elif pictures:
        parts.append("<h2>Side by side</h2>")
        parts += [
            f'<figure><img alt="{html.escape(p.source)}" src="{_data_uri(p.jpeg, "image/jpeg")}">'
            f"<figcaption>{html.escape(p.source)}</figcaption></figure>"
            for p in pictures
        ]
    parts += _html_explained(explained)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    c: Comparison, out: Path, pictures: Sequence[Picture] = (), explained: Sequence[Path] = ()
) -> list[Path]:
    """report.json, report.md, report.html and plots/*.png in `out`; returns the paths written.
    `explained`: pictures of `--explain` (explain/), shown in a section of their own."""
    plots = make_plots(c)
    written = []
    for name, png in plots.items():
        atomic_write_bytes(out / "plots" / name, png)
        written.append(out / "plots" / name)
    items = gallery(c, out)
    side = sorted(p.relative_to(out).as_posix() for p in (out / "side-by-side").rglob("*.jpg"))[
        :HTML_PICTURES
    ]
    documents = {
        "report.json": json_text(report_dict(c), indent=2) + "\n",
        "report.md": markdown(c, [f"plots/{n}" for n in plots], side, items)
        + _md_explained([p.relative_to(out).as_posix() for p in explained]),
        "report.html": html_report(c, plots, pictures, items, explained),
    }
    for name, text in documents.items():
        # A file name that is not UTF-8 is shown with backslash escapes (report.json keeps it exactly).
        atomic_write_bytes(out / name, text.encode("utf-8", "backslashreplace"))
        written.append(out / name)
    return written
