"""Where each model wins: mAP50-95 by object size, by clutter and by class, each difference between two
models with its paired bootstrap interval (`bootstrap`), and the settled ones as sentences' data. Without
labels: agreement by box size and by boxes per picture.

- Size: COCO's small (area ≤ 32²), medium (32² … 96²) and large (≥ 96²) objects, as pycocotools scores
  them (`stats[3:6]`, APs/APm/APl): labels outside the range are ignored, and so are unmatched
  detections outside it.
- Clutter: pictures bucketed by their labelled objects (all classes; a background picture has 0):
  0-3, 4-10 and 11+. When that split is skewed (a bucket holds fewer than a sixth of the pictures, or
  fewer than `MIN_PICTURES`), terciles of the counts instead: the pictures sorted by count, cut at the
  counts a third and two thirds of the way up (pictures with equal counts stay together; empty buckets
  are dropped). Each bucket's mAP is computed on its pictures only, resampled among themselves.
- Class: AP50-95 per class; a resample in which the class has no labelled object is left out of that
  class's interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from detect_cli import geometry
from detect_cli.compare import bootstrap
from detect_cli.compare.bootstrap import RESAMPLES, SEED, Interval
from detect_cli.compare.matches import MatchTable, average_precision, mean_ap, picture_weights
from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np

SIZES = ("small", "medium", "large")
CLUTTER = ((0, 3), (4, 10), (11, None))  # labelled objects per picture; None: no upper bound
MIN_PICTURES = 5
SMALL, MEDIUM = 32**2, 96**2

SliceKind = Literal["size", "clutter", "class", "boxes"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """Pictures with `low`…`high` objects (or boxes); `high` None: no upper bound. `pictures` are
    positions in the run's pictures."""

    low: int
    high: int | None
    pictures: tuple[int, ...]

    @property
    def name(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}\u2013{self.high}"


@dataclass(frozen=True, slots=True)
class SliceDifference:
    """mAP50-95 of models `a` and `b` on one slice (fractions), and a minus b with its interval."""

    kind: SliceKind
    slice: str  # "small", "11+" (objects per picture), a class name
    a: str
    b: str
    a_value: float | None
    b_value: float | None
    difference: Interval

    @property
    def where(self) -> str:
        """The slice in words: "on small objects", "on pictures with 11+ objects", "on cat"."""
        if self.kind == "size":
            return f"on {self.slice} objects"
        if self.kind == "clutter":
            return f"on pictures with {self.slice} objects"
        return f"on {self.slice}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "difference": self.difference.to_dict(), "where": self.where}


@dataclass(frozen=True, slots=True)
class AgreementSlice:
    """Agreement between two models on one slice (boxes of one size, or pictures with so many boxes)."""

    kind: SliceKind  # "size" or "boxes"
    slice: str
    matched: int
    only_a: int
    only_b: int
    agreement: Interval

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agreement": self.agreement.to_dict()}


@dataclass(frozen=True, slots=True)
class Finding:
    """A settled slice from the winner's side, in mAP points: `points` > 0, `low`…`high` its interval."""

    winner: str
    loser: str
    figure: str
    points: float
    where: str
    low: float
    high: float
    pictures: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sentence": sentence(self)}


# --- with labels ----------------------------------------------------------------------------------


def _slice_map(table: MatchTable, area: str = "all", pictures: Sequence[int] | None = None) -> float | None:
    import numpy as np

    w = np.ones((1, table.pictures))
    if pictures is not None:
        w[:] = 0
        w[0, list(pictures)] = 1
    value = float(mean_ap(average_precision(table, w, area))[0][0])
    return None if value != value else value


def size_slices(
    a: str, ta: MatchTable, b: str, tb: MatchTable, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[SliceDifference, ...]:
    """mAP50-95 on COCO's small, medium and large objects (pycocotools' APs, APm, APl), a minus b."""
    return tuple(
        SliceDifference(
            "size",
            area,
            a,
            b,
            _slice_map(ta, area),
            _slice_map(tb, area),
            bootstrap.map_differences(ta, tb, resamples, seed, area=area)[0],
        )
        for area in SIZES
    )


def buckets(counts: Sequence[int]) -> tuple[Bucket, ...]:
    """Pictures bucketed by count (objects or boxes per picture): 0-3, 4-10, 11+, or terciles when that
    split is skewed (see the module's docstring)."""
    import numpy as np

    c = np.asarray(counts, dtype=np.int64)
    n = len(c)

    def members(low: int, high: int | None) -> tuple[int, ...]:
        inside = (c >= low) & (c <= (high if high is not None else c.max(initial=0)))
        return tuple(int(i) for i in np.flatnonzero(inside))

    fixed = [Bucket(lo, hi, members(lo, hi)) for lo, hi in CLUTTER]
    if n == 0 or all(len(x.pictures) >= max(MIN_PICTURES, n / 6) for x in fixed):
        return tuple(x for x in fixed if x.pictures)
    ordered = np.sort(c)
    cuts = [int(ordered[max(0, -(-n * k // 3) - 1)]) for k in (1, 2)]  # counts a third, two thirds up
    edges = [(int(ordered[0]), cuts[0]), (cuts[0] + 1, cuts[1]), (cuts[1] + 1, int(ordered[-1]))]
    out = [Bucket(lo, hi, members(lo, hi)) for lo, hi in edges if lo <= hi]
    return tuple(x for x in out if x.pictures)


def clutter_slices(
    a: str, ta: MatchTable, b: str, tb: MatchTable, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[SliceDifference, ...]:
    """mAP50-95 on pictures bucketed by labelled objects per picture (`buckets`), a minus b."""
    return tuple(
        SliceDifference(
            "clutter",
            x.name,
            a,
            b,
            _slice_map(ta, pictures=x.pictures),
            _slice_map(tb, pictures=x.pictures),
            bootstrap.map_differences(ta, tb, resamples, seed, pictures=x.pictures)[0],
        )
        for x in buckets(ta.labels_per_picture())
    )


def class_slices(
    a: str,
    ta: MatchTable,
    b: str,
    tb: MatchTable,
    names: dict[int, str],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[SliceDifference, ...]:
    """AP50-95 per class (`names`: category id → name), a minus b, on the same draws for every class."""
    import numpy as np

    if ta.image_ids != tb.image_ids or ta.cat_ids != tb.cat_ids:
        raise ValueError("the two models were not evaluated on the same pictures and classes")
    n = ta.pictures
    ones = np.ones((1, n))
    va, vb = average_precision(ta, ones).mean(axis=1)[0], average_precision(tb, ones).mean(axis=1)[0]
    if n >= 2:
        w = picture_weights(bootstrap.draws(n, resamples, seed), n)
        reps = average_precision(ta, w).mean(axis=1) - average_precision(tb, w).mean(axis=1)  # (B, K)
    else:
        reps = np.zeros((0, len(ta.cat_ids)))
    out = []
    for k, cat in enumerate(ta.cat_ids):
        if np.isnan(va[k]):
            continue  # no labelled object of this class
        diff = bootstrap.interval(
            "AP50-95 difference", "difference", float(va[k] - vb[k]), reps[:, k], n, seed
        )
        out.append(SliceDifference("class", names.get(cat, str(cat)), a, b, float(va[k]), float(vb[k]), diff))
    return tuple(out)


def largest_settled(slices: Sequence[SliceDifference], top: int = 5) -> tuple[SliceDifference, ...]:
    """The settled differences, largest first (by the size of the difference)."""
    settled = [s for s in slices if s.difference.settled and s.difference.estimate is not None]
    return tuple(sorted(settled, key=lambda s: -abs(s.difference.estimate or 0.0))[:top])


def findings(slices: Sequence[SliceDifference]) -> tuple[Finding, ...]:
    """The settled slices as sentences' data, from the winner's side, largest first."""
    out = []
    for s in largest_settled(slices, top=len(slices)):
        d = s.difference
        assert d.estimate is not None and d.low is not None and d.high is not None
        sign = 1 if d.estimate > 0 else -1
        winner, loser = (s.a, s.b) if sign > 0 else (s.b, s.a)
        lo, hi = sorted((100 * sign * d.low, 100 * sign * d.high))
        figure = "AP50-95" if s.kind == "class" else "mAP50-95"
        out.append(Finding(winner, loser, figure, 100 * sign * d.estimate, s.where, lo, hi, d.pictures))
    return tuple(out)


def sentence(f: Finding) -> str:
    """ "rtdetr-l: +6.1 mAP50-95 on pictures with 11+ objects, 95 % CI +2.0 to +10.3"."""
    return f"{f.winner}: {f.points:+.1f} {f.figure} {f.where}, 95 % CI {f.low:+.1f} to {f.high:+.1f}"


# --- without labels -------------------------------------------------------------------------------


def size_of(area: float) -> str:
    """COCO's size names for a box area in pixels: small below 32², medium below 96², else large."""
    return "small" if area < SMALL else "medium" if area < MEDIUM else "large"


def _area(d: Detection) -> float:
    x1, y1, x2, y2 = d.xyxy
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def agreement_by_size(
    pictures: Sequence[tuple[Sequence[Detection], Sequence[Detection]]],
    iou_threshold: float = geometry.MATCH_IOU,
    classes: frozenset[str] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[AgreementSlice, ...]:
    """Agreement of two models' boxes (A's, B's per picture) by box size: matched as the run matches
    them (`agreement.match_detections`: same class, IoU ≥ threshold, most confident pairs first); a
    matched pair is as large as the mean of its two boxes' areas, an unmatched box as its own area."""
    import numpy as np

    counts = {s: np.zeros((len(pictures), 3), dtype=np.int64) for s in SIZES}  # matched, only a, only b
    for i, (a, b) in enumerate(pictures):
        if classes is not None:
            a = [d for d in a if d.class_name.casefold() in classes]
            b = [d for d in b if d.class_name.casefold() in classes]
        matches = geometry.match(a, b, iou_threshold)
        for m in matches:
            counts[size_of((_area(a[m.a]) + _area(b[m.b])) / 2)][i, 0] += 1
        used_a, used_b = {m.a for m in matches}, {m.b for m in matches}
        for j, d in enumerate(a):
            if j not in used_a:
                counts[size_of(_area(d))][i, 1] += 1
        for j, d in enumerate(b):
            if j not in used_b:
                counts[size_of(_area(d))][i, 2] += 1
    return tuple(_agreement_slice("size", s, counts[s], resamples, seed) for s in SIZES)


def agreement_by_boxes(
    matched: Sequence[int],
    only_a: Sequence[int],
    only_b: Sequence[int],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[AgreementSlice, ...]:
    """Agreement on pictures bucketed by boxes per picture, (boxes of A + boxes of B) / 2 rounded down,
    with the clutter buckets' rule (`buckets`); from per-picture matched/only_a/only_b counts."""
    import numpy as np

    c = np.stack([np.asarray(x, dtype=np.int64) for x in (matched, only_a, only_b)], axis=1).reshape(-1, 3)
    boxes = (2 * c[:, 0] + c[:, 1] + c[:, 2]) // 2
    return tuple(
        _agreement_slice("boxes", x.name, c[list(x.pictures)], resamples, seed) for x in buckets(boxes)
    )


def _agreement_slice(kind: SliceKind, name: str, c: np.ndarray, resamples: int, seed: int) -> AgreementSlice:
    iv = bootstrap.agreement(c[:, 0], c[:, 1], c[:, 2], resamples, seed, figure=f"agreement ({name})")
    return AgreementSlice(kind, name, int(c[:, 0].sum()), int(c[:, 1].sum()), int(c[:, 2].sum()), iv)
