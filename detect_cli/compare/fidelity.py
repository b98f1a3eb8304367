"""The fidelity matrix: one model on several backends and precisions (`detect compare --backends
torch,openvino:bf16,openvino:int8,onnx`), each variant measured against the same model on PyTorch
fp32 on the same inputs: speed, memory, box agreement and mean IoU, class agreement, score drift, and
the mAP change when labels are given. A variant whose box agreement with the reference falls below
`MIN_AGREEMENT`, or whose matched boxes' mean IoU falls below `MIN_MEAN_IOU`, is marked unsafe.

The comparison loop (run.py) runs every variant on every input as it runs any set of models; this
module reads the per-input results (`FidelityTally.add`, through the loop's per-input callback) and the
models' speed, memory and accuracy (`FidelityTally.result`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detect_cli import backends, geometry
from detect_cli.backends import BACKENDS, PRECISIONS, Plan
from detect_cli.compare import bootstrap
from detect_cli.compare.results import MATCH_IOU, Fidelity, ModelResult, VariantFidelity
from detect_cli.errors import BadOptionError
from detect_cli.models import ModelRef
from detect_cli.quantize import Calibration
from detect_cli.results import ImageResult

# The stated thresholds (docs/backends.md): below either, a variant is unsafe to use in the reference's
# place. 90 % box agreement is the parity check's share of matched boxes; 0.85 mean IoU sits between the
# float tolerance (0.9) and the INT8 one (0.8) at load.
MIN_AGREEMENT = 0.90
MIN_MEAN_IOU = 0.85


@dataclass(frozen=True, slots=True)
class Variant:
    """One entry of `--backends`: a backend, and a precision (None: the backend's default)."""

    backend: str
    precision: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.backend == "torch" and self.precision in (None, "fp32")

    def __str__(self) -> str:
        return f"{self.backend}:{self.precision}" if self.precision else self.backend


def parse_variants(text: str) -> tuple[Variant, ...]:
    """`torch,openvino:bf16,openvino:int8,onnx` → variants, the PyTorch fp32 reference first (added
    when not named). BadOptionError (exit 2) for an unknown backend or precision, or a repeat."""
    variants: list[Variant] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        backend, _, precision = part.partition(":")
        backend, precision = backend.strip().lower(), precision.strip().lower()
        if backend not in BACKENDS:
            raise BadOptionError(
                f"--backends: unknown backend '{backend}' in '{part}': use {', '.join(BACKENDS)}, each "
                "optionally with :precision (openvino:int8)"
            )
        if precision and precision not in PRECISIONS:
            raise BadOptionError(
                f"--backends: unknown precision '{precision}' in '{part}': use {', '.join(PRECISIONS)}"
            )
        variant = Variant(backend, precision or None)
        if variant in variants or (variant.is_reference and any(v.is_reference for v in variants)):
            raise BadOptionError(f"--backends names {part} twice")
        variants.append(variant)
    if not variants:
        raise BadOptionError("--backends needs at least one backend (e.g. torch,openvino:int8)")
    reference = next((v for v in variants if v.is_reference), Variant("torch"))
    return (reference, *(v for v in variants if v != reference))


def variant_plans(
    refs: Sequence[ModelRef], text: str, device: str, base: Plan, calibration: Calibration | None = None
) -> tuple[list[ModelRef], tuple[Plan, ...]]:
    """`--backends`: the one model once per variant, and each variant's plan (decided now: an
    unavailable backend or precision fails before anything loads). `base` carries the run's
    --offline-fallback; `calibration` (--calibration) is for the INT8 variants (else the run's own
    pictures)."""
    if len(refs) != 1:
        raise BadOptionError(
            "--backends measures one model on several backends: pass --models with one model "
            f"(e.g. --models {refs[0].name})"
        )
    variants = parse_variants(text)
    plans = tuple(
        backends.plan(
            v.backend,
            device,
            v.precision,
            offline_fallback=base.offline_fallback,
            calibration=calibration if v.precision == "int8" else None,
        )
        for v in variants
    )
    return [refs[0]] * len(variants), plans


class FidelityTally:
    """Per-input tallies of each variant against the reference (the detector at `reference`)."""

    def __init__(self, count: int, reference: int = 0, match_iou: float = MATCH_IOU) -> None:
        self.reference = reference
        self.match_iou = match_iou
        others = [i for i in range(count) if i != reference]
        self.others = others
        self.matched: dict[int, list[int]] = {i: [] for i in others}  # per picture
        self.only_ref: dict[int, list[int]] = {i: [] for i in others}
        self.only_var: dict[int, list[int]] = {i: [] for i in others}
        self.ious: dict[int, list[float]] = {i: [] for i in others}
        self.drifts: dict[int, list[float]] = {i: [] for i in others}
        self.located: dict[int, int] = dict.fromkeys(others, 0)  # matched whatever the class
        self.same_class: dict[int, int] = dict.fromkeys(others, 0)
        self.images = 0

    def add(self, results: Sequence[ImageResult]) -> None:
        """One input's results, in detector order; an input any variant failed on is left out."""
        if any(not r.ok for r in results):
            return
        self.images += 1
        ref = results[self.reference].detections
        for i in self.others:
            var = results[i].detections
            same = geometry.match(ref, var, self.match_iou, lead="a")
            self.matched[i].append(len(same))
            self.only_ref[i].append(len(ref) - len(same))
            self.only_var[i].append(len(var) - len(same))
            self.ious[i] += [m.iou for m in same]
            self.drifts[i] += [abs(var[m.b].confidence - ref[m.a].confidence) for m in same]
            # Boxes found at the same place under another class: among those the same-class matching
            # left over (RT-DETR often puts two classes on one box; matching all boxes whatever their
            # class would pair a box with its twin of the other class as readily as with its own).
            used_ref, used_var = {m.a for m in same}, {m.b for m in same}
            rest_ref = [d for k, d in enumerate(ref) if k not in used_ref]
            rest_var = [d for k, d in enumerate(var) if k not in used_var]
            elsewhere = geometry.match(rest_ref, rest_var, self.match_iou, same_class=lambda _: 0, lead="a")
            self.same_class[i] += len(same)
            self.located[i] += len(same) + len(elsewhere)

    def result(self, models: Sequence[ModelResult]) -> Fidelity:
        ref = models[self.reference]
        return Fidelity(
            reference=ref.info.label,
            min_agreement=MIN_AGREEMENT,
            min_mean_iou=MIN_MEAN_IOU,
            variants=tuple(self._variant(i, models[i], ref) for i in self.others),
        )

    def _variant(self, i: int, m: ModelResult, ref: ModelResult) -> VariantFidelity:
        agreement = bootstrap.agreement(self.matched[i], self.only_ref[i], self.only_var[i])
        ious, drifts = self.ious[i], self.drifts[i]
        mean_iou = sum(ious) / len(ious) if ious else None
        box = agreement.estimate
        why = []
        if box is not None and box < MIN_AGREEMENT:
            why.append(f"box agreement {box:.1%} < {MIN_AGREEMENT:.0%}")
        if box is not None and (mean_iou if mean_iou is not None else 0.0) < MIN_MEAN_IOU:
            iou_text = f"{mean_iou:.3f}" if mean_iou is not None else "none matched"
            why.append(f"mean IoU {iou_text} < {MIN_MEAN_IOU}")
        speed = m.speed.images_per_s
        ref_speed = ref.speed.images_per_s
        acc, ref_acc = m.accuracy, ref.accuracy
        return VariantFidelity(
            label=m.info.label,
            backend=m.info.backend,
            precision=m.info.precision,
            images=self.images,
            reference_boxes=sum(self.matched[i]) + sum(self.only_ref[i]),
            boxes=sum(self.matched[i]) + sum(self.only_var[i]),
            box_agreement=box,
            box_agreement_low=agreement.low,
            box_agreement_high=agreement.high,
            mean_iou=mean_iou,
            class_agreement=self.same_class[i] / self.located[i] if self.located[i] else None,
            score_drift_mean=sum(drifts) / len(drifts) if drifts else None,
            score_drift_max=max(drifts) if drifts else None,
            images_per_s=speed,
            speedup=speed / ref_speed if ref_speed and ref_speed == ref_speed and speed == speed else None,
            peak_mb=m.memory.peak_mb if m.memory else None,
            map50_95=acc.map50_95 if acc else None,
            map50_95_change=acc.map50_95 - ref_acc.map50_95 if acc and ref_acc else None,
            safe=None if box is None else not why,
            why_unsafe="; ".join(why) or None,
        )


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def variant_line(v: VariantFidelity) -> str:
    """One variant in words, for the terminal and report.md."""
    interval = ""
    if v.box_agreement_low is not None and v.box_agreement_high is not None:
        interval = f" [{v.box_agreement_low:.1%} to {v.box_agreement_high:.1%}]"
    parts = [
        f"{v.speedup:.2f}x speed" if v.speedup is not None else "speed -",
        f"box agreement {_pct(v.box_agreement)}{interval}",
        f"mean IoU {v.mean_iou:.3f}" if v.mean_iou is not None else "mean IoU -",
        f"class agreement {_pct(v.class_agreement)}",
        f"score drift {v.score_drift_mean:.4f} (max {v.score_drift_max:.4f})"
        if v.score_drift_mean is not None and v.score_drift_max is not None
        else "score drift -",
    ]
    if v.peak_mb is not None:
        parts.append(f"{v.peak_mb:.0f} MB")
    if v.map50_95_change is not None:
        parts.append(f"mAP50-95 {100 * v.map50_95_change:+.1f} pts")
    verdict = {True: "ok", False: f"UNSAFE ({v.why_unsafe})", None: "no boxes to judge"}[v.safe]
    return f"{v.label}: {', '.join(parts)}: {verdict}"


def fidelity_lines(f: Fidelity | None) -> list[str]:
    """The matrix for the terminal: a heading with the thresholds, one line per variant."""
    if f is None:
        return []
    head = (
        f"Fidelity against {f.reference} (unsafe below {f.min_agreement:.0%} box agreement or a mean IoU "
        f"of {f.min_mean_iou}):"
    )
    return [head, *(f"  {variant_line(v)}" for v in f.variants)]
