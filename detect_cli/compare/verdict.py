"""The verdict: what a reader deciding between the compared models needs from the tables, computed from
a `Comparison`: a decisive summary ("Choose X if …"), warnings about the run's --conf, and one sentence
per pair of models. It claims only what the run measured: speed from the median latency (p50), memory
from each model's peak (machine.py), accuracy from the labels (or the published COCO figures, said so),
agreement from the matching, each with the number of inputs behind it.

With the run's analysis (analysis.py), a difference is called only when its 95 % bootstrap interval
excludes 0 (a ratio: excludes 1); otherwise it is "not settled on N images (about M would settle it)".
The summary is built from settled figures only (memory, measured once per model, from a difference of
at least `MEMORY_CLAIM`). Untrained models (random weights) are said once, at the top, and the rest
speaks only of speed and memory."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from detect_cli.compare.results import Comparison, ModelResult

if TYPE_CHECKING:
    from detect_cli.compare.analysis import Analysis, PairAnalysis
    from detect_cli.compare.bootstrap import Interval

SAME = 1.05  # ratios below this are "about the same"
SAME_MAP = 0.05  # mAP points below this are "the same"
TIMES = "\u00d7"  # the multiplication sign: "15.4x faster" reads as a typo
MEMORY_CLAIM = 1.25  # one measurement per model, no interval: only a clear memory difference is claimed
FINDINGS = 3  # settled slices in the summary, largest first
# Below this many resampled units (pictures, or timed calls) a percentile bootstrap interval is too narrow
# (n^n distinct resamples, none holding an unseen picture): the figure is shown, nothing is called.
MIN_SETTLE = 10


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
    speed_settled: bool | None = None  # with the analysis: whether the speed interval excludes 1
    map_settled: bool | None = None  # ... whether the mAP50-95 interval excludes 0
    unsettled: tuple[str, ...] = ()  # the differences not settled, in words


@dataclass(frozen=True, slots=True)
class Verdict:
    """`headline`: random weights (when so) and what was measured; `summary`: "Choose X if …" lines
    from settled figures; `warnings`: --conf far from a model's best threshold, duplicates NMS would
    remove; `pairs`: one sentence per pair."""

    headline: tuple[str, ...]
    pairs: tuple[PairVerdict, ...]
    summary: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def lines(self) -> tuple[str, ...]:
        """Random weights first (said once), then the summary, the warnings, the pairs, the setting."""
        first = self.headline[:-1]
        return (*first, *self.summary, *self.warnings, *(p.sentence for p in self.pairs), self.headline[-1])


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


def possessive(name: str) -> str:
    """ "rtdetr-l's", and "rtdetr-shapes'" for a name ending in s (as "yolo11s'")."""
    return f"{name}'" if name[-1:] in ("s", "S") else f"{name}'s"


def _ci(low: float | None, high: float | None, fmt: str, unit: str = "") -> str:
    return f"95 % CI {fmt.format(low)}{unit} to {fmt.format(high)}{unit}"


def called(iv: Interval | None) -> bool:
    """A difference the verdict calls: its interval excludes none, on at least `MIN_SETTLE` units."""
    return iv is not None and iv.settled and iv.pictures >= MIN_SETTLE


def not_settled(iv: Interval | None, unit: str) -> str:
    """ "not settled on 22 images (about 140 would settle it)", or why there is no interval."""
    if iv is None or iv.low is None:
        return iv.note if iv is not None and iv.note else "no interval"
    what = unit if iv.method.endswith("over pictures") else "call"
    if iv.settled:  # excludes none, on too few to say so
        return f"too few {what}s to settle ({iv.pictures}; {MIN_SETTLE} at least)"
    more = f" (about {iv.pictures_to_settle:,} would settle it)" if iv.pictures_to_settle else ""
    return f"not settled on {_count(iv.pictures, what)}{more}"


@dataclass(slots=True)
class _Said:
    """A pair's sentence as it is built: each model's claims, what follows them, and the differences
    not settled (said in the sentence too)."""

    claims: dict[str, list[str]]
    tail: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)

    def unsure(self, text: str) -> None:
        self.unsettled.append(text)
        self.tail.append(text)

    def sentence(self, faster: str | None) -> str:
        """The faster model's claims first, then the other's, then the rest; capitalised when no claim
        leads it."""
        order = sorted(self.claims, key=lambda label: label != faster)
        parts = [f"{label}: {', '.join(self.claims[label])}" for label in order if self.claims[label]]
        sentence = "; ".join(parts + self.tail)
        return (sentence[0].upper() + sentence[1:] if sentence and not parts else sentence) + "."


def pair_verdict(c: Comparison, a: ModelResult, b: ModelResult) -> PairVerdict:
    """One pair's figures and its sentence: speed, memory, accuracy, agreement, each claimed only when
    settled (see the module's docstring)."""
    la, lb = a.info.label, b.info.label
    said = _Said({la: [], lb: []})
    analysed = c.analysis.pair(la, lb) if c.analysis else None
    flip = analysed is not None and analysed.a != la  # the analysis has them the other way round
    faster, speed_ratio, speed_settled = _speed(c, a, b, analysed, flip, said)
    lighter, memory_ratio = _memory(a, b, said)
    source, more_accurate, map_diff, map_settled = _accuracy(c, a, b, analysed, flip, said)
    untrained = a.info.untrained or b.info.untrained
    agreement, inputs = _agreement(c, la, lb, analysed, untrained, said)
    return PairVerdict(
        la, lb, faster, speed_ratio, lighter, memory_ratio, more_accurate, map_diff, source, agreement,
        inputs, said.sentence(faster), speed_settled, map_settled, tuple(said.unsettled),
    )  # fmt: skip


def _speed(
    c: Comparison, a: ModelResult, b: ModelResult, analysed: PairAnalysis | None, flip: bool, said: _Said
) -> tuple[str | None, float | None, bool | None]:
    """(the faster model, the p50 ratio, whether its interval settles it): with the analysis, called
    only when settled and at least `SAME`; without it, from the p50s alone."""
    la, lb = a.info.label, b.info.label
    speed_ratio = _ratio(a.speed.latency_p50_ms, b.speed.latency_p50_ms)
    iv = analysed.speed_ratio if analysed else None
    if iv is not None and iv.estimate is not None:
        slower_a = (iv.estimate > 1) != flip  # the ratio is a's p50 over b's in the analysis' order
        fast = lb if slower_a else la
        lo, hi = (None, None)
        if iv.low is not None and iv.high is not None:
            lo, hi = sorted(_inverse(x, iv.estimate < 1) for x in (iv.low, iv.high))
        # called when the interval excludes 1 and also "about the same" (< SAME): on a busy machine two
        # copies of one model differ by a few per cent, and that difference can be settled
        speed_settled = called(iv) and lo is not None and lo >= SAME
        if speed_settled:
            said.claims[fast].append(f"{speed_ratio:.1f}{TIMES} faster ({_ci(lo, hi, '{:.1f}', TIMES)})")
            return fast, speed_ratio, speed_settled
        if called(iv) and lo is not None:
            said.tail.append(
                f"about as fast as each other ({fast} {speed_ratio:.2f}{TIMES} faster, "
                f"{_ci(lo, hi, '{:.2f}', TIMES)}: within {100 * (SAME - 1):.0f} %)"
            )
        else:
            said.unsure(f"speed ({fast} {speed_ratio:.2f}{TIMES} faster): {not_settled(iv, c.unit)}")
        return None, speed_ratio, speed_settled
    if speed_ratio is not None and speed_ratio >= SAME:
        faster = la if a.speed.latency_p50_ms < b.speed.latency_p50_ms else lb
        said.claims[faster].append(f"{speed_ratio:.1f}{TIMES} faster")
        return faster, speed_ratio, None
    if speed_ratio is not None:
        said.tail.append("about as fast as each other")
    return None, speed_ratio, None


def _memory(a: ModelResult, b: ModelResult, said: _Said) -> tuple[str | None, float | None]:
    """(the lighter model, the peak memory ratio): one measurement each, claimed from `SAME` up."""
    am, bm = a.memory, b.memory
    memory_ratio = _ratio(am.peak_mb if am else None, bm.peak_mb if bm else None)
    if memory_ratio is not None and memory_ratio >= SAME and am and bm:
        lighter = a.info.label if am.peak_mb < bm.peak_mb else b.info.label
        said.claims[lighter].append(f"{memory_ratio:.1f}{TIMES} less memory")
        return lighter, memory_ratio
    if memory_ratio is not None:
        said.tail.append("about the same memory")
    return None, memory_ratio


def _accuracy(
    c: Comparison, a: ModelResult, b: ModelResult, analysed: PairAnalysis | None, flip: bool, said: _Said
) -> tuple[str, str | None, float | None, bool | None]:
    """(where mAP50-95 comes from, the more accurate model, the mAP50-95 points between them, whether
    the interval settles it). Untrained models get no accuracy claim (the headline says why)."""
    la, lb = a.info.label, b.info.label
    ma, mb = _map(a), _map(b)
    if a.info.untrained or b.info.untrained:
        return "untrained", None, None, None  # said once, in the headline
    if ma is None or mb is None:
        return "none", None, None, None
    measured = a.accuracy is not None and b.accuracy is not None
    source = "measured" if measured else "published"
    map_diff = abs(ma - mb)
    images = a.accuracy.images if a.accuracy else 0
    where = (
        f"on your {_count(images, c.unit)}" if measured else "(published COCO val figures, not measured here)"
    )
    iv = analysed.map50_95 if analysed and measured else None
    if iv is not None and iv.estimate is not None:
        map_settled = called(iv)
        best = la if ma > mb else lb
        if map_settled:
            # the analysis' difference is its a minus its b: turned into best's advantage
            sign = (-1 if flip else 1) * (1 if best == la else -1)
            lo, hi = sorted(100 * sign * x for x in (iv.low, iv.high))  # type: ignore[operator]
            said.claims[best].append(f"+{map_diff:.1f} mAP50-95 {where} ({_ci(lo, hi, '{:+.1f}')})")
            return source, best, map_diff, map_settled
        if map_diff < SAME_MAP and iv.low is not None and iv.low == iv.high:  # no spread at all
            said.tail.append(f"the same mAP50-95 {where}")
        else:
            said.unsure(f"mAP50-95 ({best} +{map_diff:.1f}): {not_settled(iv, c.unit)}")
        return source, None, map_diff, map_settled
    if map_diff >= SAME_MAP:
        more_accurate = la if ma > mb else lb
        said.claims[more_accurate].append(f"+{map_diff:.1f} mAP50-95 {where}")
        return source, more_accurate, map_diff, None
    said.tail.append(f"the same mAP50-95 {where}")
    return source, None, map_diff, None


def _agreement(
    c: Comparison, la: str, lb: str, analysed: PairAnalysis | None, untrained: bool, said: _Said
) -> tuple[float | None, int]:
    """(the share of boxes both models found, over how many inputs); said for trained models only."""
    pair = next((p for p in c.pairs if {p.a, p.b} == {la, lb}), None)
    agreement = pair.overall.agreement if pair else None
    inputs = pair.images if pair else c.inputs
    if agreement is not None and not untrained:
        ag = analysed.agreement if analysed else None
        ci = f" ({_ci(100 * ag.low, 100 * ag.high, '{:.0f}', '%')})" if ag and ag.low is not None else ""
        said.tail.append(f"they agree on {100 * agreement:.0f}% of boxes{ci} over {_count(inputs, c.unit)}")
    return agreement, inputs


def _inverse(x: float | None, invert: bool) -> float:
    """A ratio's bound as "times faster": the ratio itself, or its inverse when below 1."""
    assert x is not None
    return 1 / x if invert else x


# --- the decisive summary -------------------------------------------------------------------------


def nice_budget(ms: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 (times a power of ten) at or above `ms`: a budget in ms
    one would say aloud."""
    if ms <= 0:
        return 1.0
    scale = 10 ** math.floor(math.log10(ms))
    for step in (1, 1.5, 2, 3, 4, 5, 6, 8, 10):
        if step * scale >= ms - 1e-9:
            return step * scale
    return 10 * scale


def _ms(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def _speed_line(c: Comparison, fast: ModelResult, slow: ModelResult, pv: PairVerdict) -> str | None:
    """ "Choose yolo11n if you need under 40 ms a picture here (p50 12 ms, 95 % CI 11 to 13; p95 15 ms;
    rtdetr-l: p50 48 ms)": a budget the faster model meets (its p50's interval and its p95 under it)
    and the slower one does not (its p50's interval above it); else the settled ratio."""
    a = c.analysis
    fa, sa = (a.model(fast.info.label), a.model(slow.info.label)) if a else (None, None)
    if fa is None or sa is None or fa.latency_p50.estimate is None or sa.latency_p50.estimate is None:
        return None
    f_iv, s_iv = fa.latency_p50, sa.latency_p50
    reach = max(v for v in (f_iv.high, f_iv.estimate, fast.speed.latency_p95_ms) if v is not None and v == v)
    budget = nice_budget(reach)
    s_low = s_iv.low if s_iv.low is not None else s_iv.estimate
    unit = c.unit if c.unit == "frame" else "picture"
    ci = f", {_ci(f_iv.low, f_iv.high, '{:.1f}')}" if f_iv.low is not None else ""
    p95 = fast.speed.latency_p95_ms
    p95_text = f"; p95 {_ms(p95)} ms" if p95 == p95 else ""
    if budget < s_low:
        return (
            f"Choose {fast.info.label} if you need under {budget:g} ms a {unit} here (p50 "
            f"{_ms(f_iv.estimate)} ms{ci}{p95_text}; {slow.info.label}: p50 {_ms(s_iv.estimate)} ms)."
        )
    ratio = s_iv.estimate / f_iv.estimate
    return (
        f"Choose {fast.info.label} if speed matters most: {ratio:.1f}{TIMES} faster here (p50 "
        f"{_ms(f_iv.estimate)} vs {_ms(s_iv.estimate)} ms)."
    )


def summary(c: Comparison, pairs: tuple[PairVerdict, ...]) -> tuple[str, ...]:
    """ "Choose X if …" lines from settled figures only: a speed budget, accuracy overall and the largest
    settled slices (trained models with labels), memory (a clear difference)."""
    by_label = {m.info.label: m for m in c.models}
    lines: list[str] = []
    for pv in pairs:
        a, b = by_label[pv.a], by_label[pv.b]
        if pv.faster and pv.speed_settled:
            slow = b if pv.faster == pv.a else a
            line = _speed_line(c, by_label[pv.faster], slow, pv)
            if line:
                lines.append(line)
        analysed = c.analysis.pair(pv.a, pv.b) if c.analysis else None
        if pv.map_source == "measured" and analysed and analysed.map50_95:
            if pv.more_accurate and pv.map_settled:
                iv = analysed.map50_95
                sign = 1 if pv.more_accurate == analysed.a else -1
                lo, hi = sorted(100 * sign * x for x in (iv.low, iv.high))  # type: ignore[operator]
                lines.append(
                    f"Choose {pv.more_accurate} if accuracy matters most: +{pv.map_diff:.1f} mAP50-95 on "
                    f"your {_count(iv.pictures, c.unit)} ({_ci(lo, hi, '{:+.1f}')})."
                )
            for f in [f for f in analysed.findings if f.pictures >= MIN_SETTLE][:FINDINGS]:
                lines.append(
                    f"Choose {f.winner} for {f.where.removeprefix('on ')}: {f.points:+.1f} {f.figure} "
                    f"({_ci(f.low, f.high, '{:+.1f}')}, {_count(f.pictures, c.unit)})."
                )
        if pv.lighter and pv.memory_ratio and pv.memory_ratio >= MEMORY_CLAIM and a.memory and b.memory:
            heavy = b if pv.lighter == pv.a else a
            light = a if heavy is b else b
            lines.append(
                f"Choose {pv.lighter} if memory is tight: {pv.memory_ratio:.1f}{TIMES} less peak memory "
                f"({light.memory.peak_mb:.0f} vs {heavy.memory.peak_mb:.0f} MB, one measurement each)."  # type: ignore[union-attr]
            )
    if not lines and pairs:
        n = c.analysis.pictures if c.analysis else c.inputs
        lines.append(
            f"Nothing is settled between {' and '.join(m.info.label for m in c.models)} on "
            f"{_count(n, c.unit)}: more {c.unit}s would tell them apart (see the pairs below)."
        )
    return tuple(dict.fromkeys(lines))  # a line two pairs share, once


def warnings(c: Comparison) -> tuple[str, ...]:
    """--conf far from a trained model's F1-optimal threshold on these labels, and an NMS-free model
    whose duplicates NMS would remove to its benefit."""
    a: Analysis | None = c.analysis
    if a is None:
        return ()
    out = []
    for m in c.models:
        ma = a.model(m.info.label)
        if ma is None or m.info.untrained:
            continue
        if ma.conf_check and ma.conf_check.far:
            k = ma.conf_check
            out.append(
                f"--conf {k.conf:g} is far from {possessive(m.info.label)} best threshold on these labels "
                f"({k.best.conf:.2f}: F1 {k.best.f1:.2f} vs {k.at_conf.f1:.2f})."
            )
        nms = ma.duplicates.nms if ma.duplicates else None
        if nms and nms.removed and nms.helps:
            out.append(
                f"{m.info.label} returns duplicate boxes: NMS at IoU {nms.iou:g} afterwards (--nms) removes "
                f"{nms.removed} of its {nms.boxes} and raises its mAP50-95 from {100 * nms.map50_95:.1f} "
                f"to {100 * nms.map50_95_nms:.1f}."
            )
    return tuple(out)


def verdict(c: Comparison) -> Verdict:
    headline = []
    untrained = [m.info.label for m in c.models if m.info.untrained]
    if untrained:
        headline.append(
            f"Random weights ({', '.join(untrained)}: built from a config, untrained): speed and memory are "
            "real; their boxes, agreement and accuracy mean nothing, so the rest speaks of speed and memory."
        )
    first = c.models[0].info
    analysis_note = ""
    if c.analysis:
        analysis_note = (
            f" A difference is called only when its 95 % interval ({c.analysis.resamples:,} paired "
            f"bootstrap resamples of the {c.unit}s) rules out no difference."
        )
    headline.append(
        f"Measured on {_count(c.inputs, c.unit)} on {first.device} ({first.backend}, {first.precision}); "
        "speed is the median latency (p50) of one call, memory the peak of each model run alone."
        + analysis_note
    )
    pairs = tuple(
        pair_verdict(c, c.models[i], c.models[j])
        for i in range(len(c.models))
        for j in range(i + 1, len(c.models))
    )
    return Verdict(tuple(headline), pairs, summary(c, pairs), warnings(c))
