"""The verdict: what a reader deciding between the compared models needs from the tables, computed from
a `Comparison`, one sentence per pair of models. It claims only what the run measured: speed from the
median latency (p50), memory from each model's peak (machine.py), accuracy from the labels (or the
published COCO figures, said so), agreement from the matching, each with the number of inputs behind it.
Untrained models (random weights) get no accuracy claim."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from detect_cli.compare.results import Comparison, ModelResult

SAME = 1.05  # ratios below this are "about the same"
SAME_MAP = 0.05  # mAP points below this are "the same"
TIMES = "\u00d7"  # the multiplication sign: "15.4x faster" reads as a typo


@dataclass(frozen=True, slots=True)
class PairVerdict:
    a: str
    b: str
    faster: str | None  # None: about the same, or not measured
    speed_ratio: float | None  # slower p50 / faster p50
    lighter: str | None
    memory_ratio: float | None  # larger peak / smaller peak
    more_accurate: str | None
    map_diff: float | None  # mAP50-95 points, more accurate minus less accurate
    map_source: str  # "measured", "published", "untrained" or "none"
    agreement: float | None
    inputs: int
    sentence: str


@dataclass(frozen=True, slots=True)
class Verdict:
    headline: tuple[str, ...]
    pairs: tuple[PairVerdict, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def lines(self) -> tuple[str, ...]:
        return (*self.headline, *(p.sentence for p in self.pairs))


def _ratio(x: float | None, y: float | None) -> float | None:
    """max/min of two positive figures, None when either is missing."""
    if x is None or y is None or x != x or y != y or min(x, y) <= 0:
        return None
    return max(x, y) / min(x, y)


def _map(m: ModelResult) -> float | None:
    if m.accuracy is not None:
        return 100 * m.accuracy.map50_95
    return m.info.published_map50_95


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def pair_verdict(c: Comparison, a: ModelResult, b: ModelResult) -> PairVerdict:
    la, lb = a.info.label, b.info.label
    claims: dict[str, list[str]] = {la: [], lb: []}
    tail: list[str] = []

    speed_ratio = _ratio(a.speed.latency_p50_ms, b.speed.latency_p50_ms)
    faster = None
    if speed_ratio is not None and speed_ratio >= SAME:
        faster = la if a.speed.latency_p50_ms < b.speed.latency_p50_ms else lb
        claims[faster].append(f"{speed_ratio:.1f}{TIMES} faster")
    elif speed_ratio is not None:
        tail.append("about as fast as each other")

    am, bm = a.memory, b.memory
    memory_ratio = _ratio(am.peak_mb if am else None, bm.peak_mb if bm else None)
    lighter = None
    if memory_ratio is not None and memory_ratio >= SAME and am and bm:
        lighter = la if am.peak_mb < bm.peak_mb else lb
        claims[lighter].append(f"{memory_ratio:.1f}{TIMES} less memory")
    elif memory_ratio is not None:
        tail.append("about the same memory")

    untrained = a.info.untrained or b.info.untrained
    measured = a.accuracy is not None and b.accuracy is not None
    ma, mb = _map(a), _map(b)
    more_accurate = None
    map_diff = None
    if untrained:
        source = "untrained"
        tail.append("accuracy not compared: random weights, so boxes and mAP are meaningless")
    elif ma is not None and mb is not None:
        source = "measured" if measured else "published"
        map_diff = abs(ma - mb)
        images = a.accuracy.images if a.accuracy else 0
        where = (
            f"on your {_count(images, 'image')}"
            if measured
            else "(published COCO val figures, not measured here)"
        )
        if map_diff >= SAME_MAP:
            more_accurate = la if ma > mb else lb
            claims[more_accurate].append(f"+{map_diff:.1f} mAP50-95 {where}")
        else:
            tail.append(f"the same mAP50-95 {where}")
    else:
        source = "none"

    pair = next((p for p in c.pairs if {p.a, p.b} == {la, lb}), None)
    agreement = pair.overall.agreement if pair else None
    inputs = pair.images if pair else c.inputs
    if agreement is not None:
        tail.append(f"they agree on {100 * agreement:.0f}% of boxes over {_count(inputs, c.unit)}")

    order = sorted(claims, key=lambda label: label != faster)  # the faster model's claims first
    parts = [f"{label}: {', '.join(claims[label])}" for label in order if claims[label]]
    sentence = "; ".join(parts + tail)
    sentence = (sentence[0].upper() + sentence[1:] if sentence and not parts else sentence) + "."
    return PairVerdict(
        la, lb, faster, speed_ratio, lighter, memory_ratio, more_accurate, map_diff, source, agreement,
        inputs, sentence,
    )  # fmt: skip


def verdict(c: Comparison) -> Verdict:
    headline = []
    untrained = [m.info.label for m in c.models if m.info.untrained]
    if untrained:
        headline.append(
            f"Random weights ({', '.join(untrained)}: built from a config, untrained): speed and memory are "
            "real; their boxes, agreement and accuracy mean nothing."
        )
    first = c.models[0].info
    headline.append(
        f"Measured on {_count(c.inputs, c.unit)} on {first.device} ({first.backend}, {first.precision}); "
        "speed is the median latency (p50) of one call, memory the peak of each model run alone."
    )
    pairs = tuple(
        pair_verdict(c, c.models[i], c.models[j])
        for i in range(len(c.models))
        for j in range(i + 1, len(c.models))
    )
    return Verdict(tuple(headline), pairs)
