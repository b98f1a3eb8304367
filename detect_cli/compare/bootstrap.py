"""How sure a figure is: a paired bootstrap over the pictures, seeded, so a report is reproducible.

Every figure here is computed on the pictures as they are (the estimate), then on `resamples` resamples
of them: n pictures drawn with replacement from the n, the same draw for both models (paired), so what
the two models have in common (hard pictures, easy pictures) cancels out of their difference. The 95 %
interval is the percentile interval: the 2.5th and 97.5th percentiles of the resampled figures (numpy's
linear interpolation), as `scipy.stats.bootstrap(method="percentile")` gives it; the draws are
`numpy.random.default_rng(seed).integers(0, n, (resamples, n))`. (A NumPy loop, not scipy: scipy is not
among detect's dependencies.) A resample on which the figure is undefined (e.g. no labelled object in
it) is left out, and the result says how many were used.

A difference is *settled* when its interval excludes 0, a ratio when its interval excludes 1. For an
unsettled difference d with bootstrap standard error se on n pictures, `pictures_to_settle` estimates how
many pictures would settle it: n·(1.96·se/|d|)², assuming the difference stays d and the standard error
shrinks as 1/√n (pictures like these, independent, the resampled figures roughly normal). For a ratio the
same is done on the log scale. With one picture there is nothing to resample: no interval, said so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from detect_cli.compare.matches import MatchTable, average_precision, mean_ap, picture_weights

if TYPE_CHECKING:
    import numpy as np

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
Z = 1.959963984540054  # the normal quantile for a two-sided 95 %

Kind = Literal["difference", "ratio", "level"]


@dataclass(frozen=True, slots=True)
class Interval:
    """One figure with its bootstrap interval. `kind` says what would settle it: a "difference" whose
    interval excludes 0, a "ratio" whose interval excludes 1; a "level" (e.g. agreement) is never
    settled, only bounded. `low`/`high` are None when there is no interval (fewer than two pictures, or
    too few resamples where the figure is defined); `note` says why. `resamples` counts the resamples
    used (those where the figure is defined)."""

    figure: str
    kind: Kind
    estimate: float | None
    low: float | None
    high: float | None
    pictures: int
    settled: bool
    standard_error: float | None = None
    pictures_to_settle: int | None = None
    resamples: int = 0
    seed: int = SEED
    confidence: float = CONFIDENCE
    method: str = "percentile bootstrap, paired over pictures"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(self).items()}


def draws(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The resampled picture positions, (resamples, n): the same for every figure with this seed."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def interval(
    figure: str,
    kind: Kind,
    estimate: float | None,
    replicates: np.ndarray,
    pictures: int,
    seed: int = SEED,
    method: str = "percentile bootstrap, paired over pictures",
    unit: str = "picture",
) -> Interval:
    """An `Interval` from the figure on the pictures and on each resample (NaN: undefined there);
    `unit` is what was resampled ("picture", or "call" for timings resampled on their own)."""
    import numpy as np

    base = {"figure": figure, "kind": kind, "pictures": pictures, "seed": seed, "method": method}
    if estimate is None or estimate != estimate:
        return Interval(**base, estimate=None, low=None, high=None, settled=False, note="not defined")
    if pictures < 2:
        note = f"one {unit}: no interval" if pictures == 1 else f"no {unit}s"
        return Interval(**base, estimate=estimate, low=None, high=None, settled=False, note=note)
    rep = np.asarray(replicates, dtype=float)
    rep = rep[~np.isnan(rep)]
    if len(rep) < max(2, len(replicates) // 2):
        return Interval(
            **base, estimate=estimate, low=None, high=None, settled=False, resamples=len(rep),
            note=f"defined on only {len(rep)} of {len(replicates)} resamples: no interval",
        )  # fmt: skip
    alpha = (1 - CONFIDENCE) / 2
    low, high = (float(v) for v in np.percentile(rep, [100 * alpha, 100 * (1 - alpha)]))
    se = float(rep.std(ddof=1))
    null = {"difference": 0.0, "ratio": 1.0}.get(kind)
    settled = null is not None and (low > null or high < null)
    to_settle = None
    if null is not None and not settled:
        to_settle = _pictures_to_settle(kind, estimate, rep, pictures)
    return Interval(
        **base, estimate=estimate, low=low, high=high, settled=settled, standard_error=se,
        pictures_to_settle=to_settle, resamples=len(rep),
    )  # fmt: skip


def _pictures_to_settle(kind: Kind, estimate: float, rep: np.ndarray, n: int) -> int | None:
    """n·(z·se/|d|)²: the pictures at which z standard errors fit inside |d| (None when d is 0)."""
    import numpy as np

    if kind == "ratio":
        if estimate <= 0 or (rep <= 0).any():
            return None
        d, se = math.log(estimate), float(np.log(rep).std(ddof=1))
    else:
        d, se = estimate, float(rep.std(ddof=1))
    if d == 0 or se == 0:
        return None
    return max(n + 1, math.ceil(n * (Z * se / abs(d)) ** 2))


def paired(
    figure: str,
    kind: Kind,
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Bootstrap any figure computed from picture multiplicities: `statistic(weights)` takes (B, n)
    weights and returns (B,) figures; all ones is the figure on the pictures as they are."""
    import numpy as np

    estimate = float(statistic(np.ones((1, n)))[0]) if n else None
    if n < 2:
        return interval(figure, kind, estimate, np.zeros(0), n, seed)
    reps = statistic(picture_weights(draws(n, resamples, seed), n))
    return interval(figure, kind, estimate, reps, n, seed)


# --- figures --------------------------------------------------------------------------------------


def _check_same_pictures(a: MatchTable, b: MatchTable) -> None:
    if a.image_ids != b.image_ids or a.cat_ids != b.cat_ids:
        raise ValueError("the two models were not evaluated on the same pictures and classes")


def map_differences(
    a: MatchTable,
    b: MatchTable,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    area: str = "all",
    pictures: Sequence[int] | None = None,
) -> tuple[Interval, Interval]:
    """mAP50-95 and mAP50 of model A minus model B (fractions: 0.05 is 5 points), on the same labelled
    pictures, each with its paired bootstrap interval. mAP is COCOeval's: AP per class at 101 recall
    points (averaged over IoU 0.50…0.95 for mAP50-95), the mean over classes with labelled objects;
    on each resample it is recomputed from COCOeval's per-picture matches (`matches.average_precision`).
    `area` restricts it to COCO's small/medium/large objects; `pictures` (positions in the tables'
    `image_ids`) to some pictures, resampled among themselves."""
    _check_same_pictures(a, b)
    among = list(range(a.pictures)) if pictures is None else list(pictures)
    if pictures is not None:
        a, b = a.restrict(among), b.restrict(among)

    def stat(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        full = picture_weights_from_subset(weights, among, a.pictures)
        ma, ma50 = mean_ap(average_precision(a, full, area))
        mb, mb50 = mean_ap(average_precision(b, full, area))
        return ma - mb, ma50 - mb50

    return _two_figures(("mAP50-95 difference", "mAP50 difference"), stat, len(among), resamples, seed)


def picture_weights_from_subset(weights: np.ndarray, among: Sequence[int], n: int) -> np.ndarray:
    """(B, len(among)) multiplicities of a subset → (B, n) over all pictures (0 outside the subset)."""
    import numpy as np

    full = np.zeros((len(weights), n))
    full[:, list(among)] = weights
    return full


def _two_figures(
    names: tuple[str, str],
    stat: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    n: int,
    resamples: int,
    seed: int,
) -> tuple[Interval, Interval]:
    """Two differences from one statistic, on the same draws."""
    import numpy as np

    if n == 0:
        return tuple(interval(x, "difference", None, np.zeros(0), 0, seed) for x in names)  # type: ignore[return-value]
    est = [float(v[0]) for v in stat(np.ones((1, n)))]
    reps = stat(picture_weights(draws(n, resamples, seed), n)) if n >= 2 else (np.zeros(0), np.zeros(0))
    return (
        interval(names[0], "difference", est[0], reps[0], n, seed),
        interval(names[1], "difference", est[1], reps[1], n, seed),
    )


def agreement(
    matched: Sequence[int],
    only_a: Sequence[int],
    only_b: Sequence[int],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    figure: str = "agreement",
) -> Interval:
    """Agreement between two models, 2·matched / (boxes of A + boxes of B) summed over the pictures (as
    `ClassAgreement.agreement`), from per-picture counts (an `ImageMatch`'s matched/only_a/only_b), with
    its bootstrap interval. A level, never "settled". Undefined (None) when neither model found a box."""
    import numpy as np

    m, a, b = (np.asarray(x, dtype=float) for x in (matched, only_a, only_b))

    def stat(weights: np.ndarray) -> np.ndarray:
        mm, aa, bb = weights @ m, weights @ a, weights @ b
        total = 2 * mm + aa + bb
        return np.where(total > 0, 2 * mm / np.where(total > 0, total, 1), np.nan)

    return paired(figure, "level", stat, len(m), resamples, seed)


def speed_ratio(
    wall_a: Sequence[float],
    wall_b: Sequence[float],
    picture_a: Sequence[int] | None = None,
    picture_b: Sequence[int] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """p50 latency of A / p50 latency of B (above 1: A is slower), with its bootstrap interval.

    `wall_a`/`wall_b` are the timed calls (ms). When `picture_a`/`picture_b` say which picture each call
    was on and both models were timed on the same pictures, the pictures are resampled, each carrying
    all its calls of both models (paired: a picture that is slow to decode or crowded slows both);
    otherwise each model's calls are resampled on their own (independent), and `pictures` counts the
    calls of the model with fewer. Medians are numpy's (linear interpolation between the middle two)."""
    import numpy as np

    a, b = np.asarray(wall_a, dtype=float), np.asarray(wall_b, dtype=float)
    figure = "p50 latency ratio"
    if not len(a) or not len(b):
        return interval(figure, "ratio", None, np.zeros(0), 0, seed)
    estimate = float(np.median(a) / np.median(b))
    if picture_a is not None and picture_b is not None:
        pa, pb = np.asarray(picture_a), np.asarray(picture_b)
        ids = np.unique(pa)
        if len(pa) == len(a) and len(pb) == len(b) and np.array_equal(ids, np.unique(pb)):
            ia, ib = np.searchsorted(ids, pa), np.searchsorted(ids, pb)
            n = len(ids)
            if n < 2:
                return interval(figure, "ratio", estimate, np.zeros(0), n, seed)
            w = picture_weights(draws(n, resamples, seed), n)
            reps = weighted_median(a, w[:, ia]) / weighted_median(b, w[:, ib])
            return interval(figure, "ratio", estimate, reps, n, seed)
    n = min(len(a), len(b))
    method = "percentile bootstrap, calls independently"
    if n < 2:
        return interval(figure, "ratio", estimate, np.zeros(0), n, seed, method, unit="call")
    rng = np.random.default_rng(seed)
    ra, rb = rng.integers(0, len(a), (resamples, len(a))), rng.integers(0, len(b), (resamples, len(b)))
    reps = _median_rows(a, ra) / _median_rows(b, rb)
    return interval(figure, "ratio", estimate, reps, n, seed, method, unit="call")


def _median_rows(x: np.ndarray, idx: np.ndarray, block: int = 200) -> np.ndarray:
    import numpy as np

    return np.concatenate([np.median(x[idx[i : i + block]], axis=1) for i in range(0, len(idx), block)])


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of integer `weights` (B, N): the median of `values` repeated as often as its weight, as
    np.median of the repeated array (linear between the middle two); NaN for a row of zeros."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    cw = np.cumsum(np.asarray(weights)[:, order], axis=1)  # (B, N)
    total = cw[:, -1]
    pos = 0.5 * (total - 1)
    lo, hi = np.floor(pos), np.ceil(pos)
    last = len(v) - 1
    # the value at rank r of the repeated array: the first element whose cumulative weight exceeds r
    v_lo = v[np.minimum((cw <= lo[:, None]).sum(axis=1), last)]
    v_hi = v[np.minimum((cw <= hi[:, None]).sum(axis=1), last)]
    out = v_lo + (v_hi - v_lo) * (pos - lo)
    return np.where(total > 0, out, np.nan)
