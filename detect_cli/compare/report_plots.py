"""The report's plots, as PNG bytes: matplotlib imported lazily with its Agg backend (no display)."""

from __future__ import annotations

from detect_cli.compare.results import Comparison


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
    return plots
