"""The report's plots, as PNG bytes: matplotlib imported lazily with its Agg backend (no display).

Each model keeps one colour in every plot and in report.html's viewer (`model_colors`), and each
figure shows one statistic, named on its axis: latency is always the p50 (median) of one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from detect_cli.compare.results import Comparison, ModelResult
from detect_cli.models import PUBLISHED_SIZE, REGISTRY, family_of

if TYPE_CHECKING:
    import threading

    from matplotlib.axes import Axes

# Okabe-Ito: told apart by colour-blind readers too; more models than colours get tab20's.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000", "#f0e442")
SPECS = {s.name: s for s in REGISTRY}
FAMILY_NAMES = {"rtdetr": "RT-DETR", "yolo11": "YOLO11", "yolo12": "YOLO12", "yolo26": "YOLO26"}


def model_colors(c: Comparison) -> dict[str, str]:
    """One distinct colour per compared model, the same in every plot and in the page."""
    colors = list(PALETTE)
    if len(c.models) > len(colors):
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        colors += [to_hex(colormaps["tab20"](k)) for k in range(20)]
    return {m.info.label: colors[k % len(colors)] for k, m in enumerate(c.models)}


def _figure(width: float, height: float, cols: int = 1):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    return plt, plt.subplots(1, cols, figsize=(width, height), dpi=110, layout="constrained")


def _png(plt, fig) -> bytes:  # type: ignore[no-untyped-def]
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _bars(c: Comparison, values: list[tuple[str, float]], unit: str, xlabel: str, title: str) -> bytes:
    colors = model_colors(c)
    plt, (fig, ax) = _figure(7, 0.55 * len(values) + 1.5)
    labels = [label for label, _ in values][::-1]
    numbers = [v for _, v in values][::-1]
    ax.barh(labels, numbers, color=[colors[label] for label in labels])
    for y, v in enumerate(numbers):
        ax.text(v, y, f" {v:.0f} {unit}" if v >= 10 else f" {v:.1f} {unit}", va="center")
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(max(numbers) * 1.25, 1))
    ax.set_title(title)
    return _png(plt, fig)


def plot_speed(c: Comparison) -> bytes | None:
    """The median latency (p50) of one call per model: the figure the verdict compares."""
    values = [(m.info.label, m.speed.latency_p50_ms) for m in c.models if m.speed.calls]
    if not values:
        return None
    return _bars(
        c, values, "ms", f"p50 latency: ms per {c.unit}, one call (measured here)", "Speed: median latency"
    )


def plot_memory(c: Comparison) -> bytes | None:
    """Peak memory by model (machine.py), when it was measured."""
    values = [(m.info.label, m.memory.peak_mb) for m in c.models if m.memory]
    if not values:
        return None
    methods = {m.memory.method for m in c.models if m.memory}
    what = "GPU memory allocated" if methods == {"cuda"} else "resident memory"
    return _bars(c, values, "MB", f"peak MB, {what}", "Peak memory per model (each alone in its own process)")


def plot_accuracy_vs_speed(c: Comparison) -> bytes | None:
    """mAP50-95 measured on the labels against the p50 latency, for trained models (without labels the
    overview places the models among their published families)."""
    points = [
        (m.info.label, m.speed.latency_p50_ms, 100 * m.accuracy.map50_95)
        for m in c.models
        if m.accuracy and not m.info.untrained
    ]
    if not points:
        return None
    colors = model_colors(c)
    plt, (fig, ax) = _figure(6, 4)
    for label, x, y in points:
        ax.scatter([x], [y], s=60, color=colors[label], label=label)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(f"p50 latency: ms per {c.unit} (measured here)")
    ax.set_ylabel("mAP50-95 (%) on your labels")
    ax.set_title("Accuracy vs speed, measured")
    ax.margins(0.25)
    ax.set_xlim(left=0)  # a latency is never negative: the axis starts at 0
    ax.grid(alpha=0.3)
    return _png(plt, fig)


def overview_place(m: ModelResult) -> tuple[float | None, float | None]:
    """Where a compared model sits on the overview: a model of the registry at its published GFLOPs and
    COCO mAP50-95 (on its family's line); another one at the GFLOPs counted here, without a published
    mAP."""
    spec = SPECS.get(m.info.name)  # an untrained stand-in has the official model's name and network
    if spec:
        return PUBLISHED_SIZE[spec.name][1], spec.published_map
    return m.info.gflops, None


def plot_overview(c: Comparison) -> bytes | None:
    """The compared models among their families' published sizes: COCO mAP50-95 (published) against
    GFLOPs, each family's sizes joined by a line; a compared model is a large dot labelled with its p50
    measured here, and a star at the mAP50-95 measured on the user's labels. None when no model can be
    placed (no official model, no labels)."""
    colors = model_colors(c)
    placed = [(m, *overview_place(m)) for m in c.models]
    families = sorted({family_of(m.info.name) for m, g, pub in placed if g is not None and pub is not None})
    measured = [(m, g) for m, g, _ in placed if m.accuracy and g and not m.info.untrained]
    if not families and not measured:
        return None
    plt, (fig, ax) = _figure(7.2, 4.6)
    for k, family in enumerate(families):
        _draw_family(ax, k, family)
    for m, gflops, pub in placed:
        if gflops is not None and pub is not None:
            _draw_compared(ax, m, gflops, pub, colors[m.info.label])
    for m, gflops in measured:
        assert m.accuracy is not None
        ax.scatter(
            [gflops],
            [100 * m.accuracy.map50_95],
            marker="*",
            s=220,
            color=colors[m.info.label],
            zorder=4,
            label=f"{m.info.label}, on your labels",
        )
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs at 640 px (compute per image; log scale)")
    ax.set_ylabel("mAP50-95 (%)")
    if families:
        ax.set_title("Your models among their families: COCO mAP50-95 (published) vs compute")
    else:  # only models of the user's own: no published line to set them against
        ax.set_title("Your models: mAP50-95 on your labels vs compute")
    ax.grid(alpha=0.3, which="both")
    ax.margins(0.12)
    ax.legend(fontsize="small", loc="lower right" if families else "best")
    return _png(plt, fig)


def _draw_family(ax: Axes, k: int, family: str) -> None:
    """One family's published sizes on the overview: a gray line (the k-th family's shade and dash)
    through its models, each point named by its size."""
    members = [s for s in REGISTRY if family_of(s.name) == family]
    xs = [PUBLISHED_SIZE[s.name][1] for s in members]
    ys = [s.published_map for s in members]
    gray = ("#8a8a8a", "#b0b0b0", "#6a6a6a", "#9c9c9c")[k % 4]
    style = ("-", "--", "-.", ":")[k % 4]
    ax.plot(
        xs,
        ys,
        style,
        color=gray,
        marker="o",
        mfc="white",
        ms=5,
        lw=1.2,
        label=f"{FAMILY_NAMES.get(family, family)} (published)",
    )
    for s, x, y in zip(members, xs, ys, strict=True):
        ax.annotate(
            s.name.removeprefix(family).strip("-"),
            (x, y),
            textcoords="offset points",
            xytext=(-4, -12),
            fontsize=7,
            color="#555",
        )


def _draw_compared(ax: Axes, m: ModelResult, gflops: float, pub: float, color: str) -> None:
    """A compared model on the overview: a large dot at its published place (hollow for random
    weights: the published figure is the trained model's), labelled with its p50 measured here."""
    hollow = m.info.untrained
    ax.scatter(
        [gflops],
        [pub],
        s=110,
        color="white" if hollow else color,
        edgecolors=color,
        linewidths=2,
        zorder=3,
        label=f"{m.info.label}" + (" (untrained)" if hollow else ""),
    )
    ax.annotate(
        f"{m.info.label}\n{m.speed.latency_p50_ms:.0f} ms p50 here",
        (gflops, pub),
        textcoords="offset points",
        xytext=(9, -7) if pub >= 45 else (9, 3),  # under the family lines near the top, else above
        va="top" if pub >= 45 else "bottom",
        fontsize=8,
        color=color,
        weight="bold",
    )


def plot_detections_per_class(c: Comparison, top: int = 15) -> bytes | None:
    """Detections per class by model, for the most frequent classes; None when there are none."""
    import numpy as np

    totals: dict[str, int] = {}
    for m in c.models:
        for n, k in m.detections_per_class.items():
            totals[n] = totals.get(n, 0) + k
    names = sorted((n for n in totals if totals[n]), key=lambda n: -totals[n])[:top]
    if not names:
        return None
    colors = model_colors(c)
    plt, (fig, ax) = _figure(max(6, 0.55 * len(names) * len(c.models) ** 0.5 + 2), 4)
    x = np.arange(len(names))
    width = 0.8 / len(c.models)
    for k, m in enumerate(c.models):
        counts = [m.detections_per_class.get(n, 0) for n in names]
        ax.bar(x + k * width - 0.4 + width / 2, counts, width, label=m.info.label, color=colors[m.info.label])
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylabel(f"detections (conf ≥ {c.settings.conf:g})")
    ax.set_title("Detections per class" + (f" (top {top})" if len(totals) > top else ""))
    ax.legend(fontsize="small")
    return _png(plt, fig)


def plot_operating(c: Comparison) -> bytes | None:
    """Precision-recall curves and F1 against the threshold, every model on one axis each, the best F1
    marked and --conf drawn (labels)."""
    a = c.analysis
    curves = [m.curve for m in a.models if m.curve is not None] if a else []
    if not curves:
        return None
    plt, (fig, (pr, f1)) = _figure(11, 4.2, cols=2)
    colours = model_colors(c)  # one colour per model, as in every plot and the page
    for cv in curves:
        colour = colours[cv.model]
        kept = [(r, p) for r, p in zip(cv.recall, cv.precision, strict=True) if r or p]  # some box kept
        pr.plot([r for r, _ in kept], [p for _, p in kept], color=colour, label=cv.model, lw=1.8)
        pr.scatter([cv.best.recall], [cv.best.precision], color=colour, zorder=3, s=30)
        f1.plot(cv.conf, cv.f1, color=colour, label=cv.model, lw=1.8)
        f1.scatter([cv.best.conf], [cv.best.f1], color=colour, zorder=3, s=30)
    f1.axvline(c.settings.conf, color="#444", ls="--", lw=1, label=f"--conf {c.settings.conf:g}")
    pr.set(
        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall, IoU 0.5"
    )
    f1.set(xlabel="confidence threshold", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02), title="F1 vs threshold")
    for ax in (pr, f1):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _png(plt, fig)


def plot_scores(c: Comparison) -> bytes | None:
    """Without labels: each model's score histogram, and boxes per picture as the threshold moves."""
    a = c.analysis
    profiles = [m.scores for m in a.models if m.scores is not None] if a else []
    if not any(sum(s.counts) for s in profiles):  # no model kept a box: two flat lines would say nothing
        return None
    plt, (fig, (hist, boxes)) = _figure(11, 4.2, cols=2)
    colours = model_colors(c)
    for s in profiles:
        colour = colours[s.model]
        hist.stairs(s.counts, s.edges, color=colour, label=s.model, lw=1.8)
        boxes.plot(s.thresholds, s.boxes_per_picture, color=colour, label=s.model, lw=1.8, marker="o", ms=3)
    hist.set(xlabel="confidence", ylabel="boxes", xlim=(0, 1), title="Scores of the boxes kept")
    boxes.set(xlabel="threshold", ylabel=f"boxes per {c.unit}", xlim=(0, 1), title="Boxes per picture")
    for ax in (hist, boxes):
        ax.axvline(c.settings.conf, color="#444", ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _png(plt, fig)


def make_plots(c: Comparison) -> dict[str, bytes]:
    """Every plot there is data for, by file name (plots/<name>)."""
    return draw_plots(c)[0]


def draw_plots(c: Comparison, stop: threading.Event | None = None) -> tuple[dict[str, bytes], list[str]]:
    """`make_plots`, and the plots left undrawn because `stop` was set before their turn (a plot begun
    is finished)."""
    makers: dict[str, Callable[[Comparison], bytes | None]] = {
        "overview.png": plot_overview,
        "speed.png": plot_speed,
        "memory.png": plot_memory,
        "accuracy_vs_speed.png": plot_accuracy_vs_speed,
        "detections_per_class.png": plot_detections_per_class,
        "operating_points.png": plot_operating,  # the analysis' (analysis.py), with labels
        "scores.png": plot_scores,  # the analysis', without labels
    }
    made: dict[str, bytes] = {}
    left_out: list[str] = []
    for name, plot in makers.items():
        if stop is not None and stop.is_set():
            left_out.append(name)
            continue
        png = plot(c)
        if png is not None:
            made[name] = png
    return made, left_out
