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

from detect_cli.compare.results import Comparison, ModelResult, Picture
from detect_cli.writers import atomic_write_bytes, json_text

if TYPE_CHECKING:
    from rich.table import Table

REPORT_FILES = ("report.json", "report.md", "report.html")
REPORT_RECORD = "report.json"  # a folder holding it holds a comparison
HTML_PICTURES = 4  # side-by-side pictures embedded in report.html (all of them are written as files)
HTML_PICTURE_WIDTH = 1600  # px: embedded pictures are scaled down to keep report.html small


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
    if c.models[0].accuracy:
        out.append(_accuracy_table(c))
    out.append(_agreement_table(c))
    if full:
        if c.models[0].accuracy:
            out.append(_class_accuracy_table(c))
        out += [_class_agreement_table(c, p) for p in range(len(c.pairs))]
        out.append(_per_class_table(c))
    return out


def _speed_table(c: Comparison, compact: bool = False) -> TableData:
    """`compact` (the terminal) leaves out the pre- and postprocess columns."""
    labelled = c.models[0].accuracy is not None
    stages = ("inference",) if compact else ("preprocess", "inference", "postprocess")
    rows = tuple(
        (
            m.info.label,
            _f(m.info.params_m),
            _f(m.info.gflops),
            *(_f(getattr(m.speed, f"{stage}_ms")) for stage in stages),
            _f(m.speed.latency_p50_ms),
            _f(m.speed.latency_p95_ms),
            _f(m.speed.images_per_s, "{:.2f}"),
            _accuracy_cell(m),
        )
        for m in c.models
    )
    first = c.models[0].info
    note = (
        f"{first.device}, {first.backend}, {first.precision}, imgsz {first.imgsz}; "
        f"timed calls per model: {c.models[0].speed.calls}, after {c.settings.warmup} warm-up runs. "
        f"Latency is the wall time of one call on one {c.unit}."
    )
    if not labelled and any(m.info.published_map50_95 is not None for m in c.models):
        source = next(m.info.published_source for m in c.models if m.info.published_source)
        note += f" Published mAP50-95: the authors' COCO val figure ({source}), not measured here."
    return TableData(
        "Speed",
        (
            "model",
            "params M",
            "GFLOPs",
            *({"preprocess": "pre ms", "inference": "infer ms", "postprocess": "post ms"}[s] for s in stages),
            "p50 ms",
            "p95 ms",
            "frames/s" if c.video else "img/s",
            "mAP50-95" if labelled else "mAP50-95 COCO",
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
        headers += [f"{m.info.label} mAP50-95", f"{m.info.label} mAP50"]
    per_model = [{r.class_name: r for r in m.accuracy.per_class} for m in c.models if m.accuracy]
    names = (
        [r.class_name for r in c.models[0].accuracy.per_class if r.instances] if c.models[0].accuracy else []
    )
    rows = []
    for n in names:
        row = [n, str(per_model[0][n].instances)]
        for pm in per_model:
            row += [_pct(pm[n].map50_95), _pct(pm[n].map50)]
        rows.append(tuple(row))
    return TableData("Accuracy per class", tuple(headers), tuple(rows), "Classes with labels (%).")


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
        for h in t.headers:
            table.add_column(h, justify="left" if h in ("model", "pair", "class") else "right")
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
    ax.grid(alpha=0.3)
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
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
    return _png(plt, fig)


def make_plots(c: Comparison) -> dict[str, bytes]:
    plots = {"speed.png": plot_speed(c)}
    if (accuracy := plot_accuracy_vs_speed(c)) is not None:
        plots["accuracy_vs_speed.png"] = accuracy
    plots["detections_per_class.png"] = plot_detections_per_class(c)
    return plots


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
            "their detections and accuracy are meaningless; their speed is real"
        )
    lines += [f"Note: {n}" for n in c.notes]
    if c.interrupted:
        lines.append("Interrupted: these numbers cover the inputs done before Ctrl-C")
    lines += [f"Failed: {src}: {err}" for src, err in c.failed[:10]]
    return lines


def _md_table(t: TableData) -> str:
    esc = [tuple(cell.replace("|", "\\|") for cell in row) for row in (t.headers, *t.rows)]
    lines = [f"## {t.title}", ""]
    lines.append("| " + " | ".join(esc[0]) + " |")
    lines.append("|" + "|".join("---" if h in ("model", "pair", "class") else "--:" for h in t.headers) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines)


def markdown(c: Comparison, plots: Sequence[str], pictures: Sequence[str]) -> str:
    parts = ["# detect compare", "", *[f"- {line}" for line in _run_lines(c)]]
    parts += ["", *(_md_table(t) + "\n" for t in tables(c))]
    if plots:
        parts += ["## Plots", "", *[f"![{Path(p).stem}]({p})" for p in plots], ""]
    if pictures:
        parts += ["## Side by side", "", *[f"![{Path(p).name}]({p})" for p in pictures], ""]
    if c.video and c.video.side_by_side:
        parts += ["## Side-by-side video", "", *[f"- [{p}]({p})" for p in c.video.side_by_side], ""]
    return "\n".join(parts) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 .3em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.note{color:#555;font-size:12px;margin:0 0 1.5em}img{max-width:100%;border:1px solid #ddd}
figure{margin:1em 0}figcaption{color:#555;font-size:12px}ul.run{color:#333}
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


def html_report(c: Comparison, plots: dict[str, bytes], pictures: Sequence[Picture]) -> str:
    """One file that opens offline: every image is a data: URI, the style is inline, nothing is fetched."""
    run = "".join(f"<li>{html.escape(line)}</li>" for line in _run_lines(c))
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>detect compare: {html.escape(' vs '.join(m.info.label for m in c.models))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>detect compare: {html.escape(' vs '.join(m.info.label for m in c.models))}</h1>",
        f'<ul class="run">{run}</ul>',
        *(_html_table(t) for t in tables(c)),
        "<h2>Plots</h2>",
        *(
            f'<figure><img alt="{html.escape(name)}" src="{_data_uri(png, "image/png")}"></figure>'
            for name, png in plots.items()
        ),
    ]
    if pictures:
        parts.append("<h2>Side by side</h2>")
        parts += [
            f'<figure><img alt="{html.escape(p.source)}" src="{_data_uri(p.jpeg, "image/jpeg")}">'
            f"<figcaption>{html.escape(p.source)}</figcaption></figure>"
            for p in pictures
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(c: Comparison, out: Path, pictures: Sequence[Picture] = ()) -> list[Path]:
    """report.json, report.md, report.html and plots/*.png in `out`; returns the paths written."""
    plots = make_plots(c)
    written = []
    for name, png in plots.items():
        atomic_write_bytes(out / "plots" / name, png)
        written.append(out / "plots" / name)
    side = sorted(p.relative_to(out).as_posix() for p in (out / "side-by-side").rglob("*.jpg"))[
        :HTML_PICTURES
    ]
    documents = {
        "report.json": json_text(c.to_dict(), indent=2) + "\n",
        "report.md": markdown(c, [f"plots/{n}" for n in plots], side),
        "report.html": html_report(c, plots, pictures),
    }
    for name, text in documents.items():
        # A file name that is not UTF-8 is shown with backslash escapes (report.json keeps it exactly).
        atomic_write_bytes(out / name, text.encode("utf-8", "backslashreplace"))
        written.append(out / name)
    return written
