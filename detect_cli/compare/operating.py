"""Fair operating points: each model judged at thresholds that suit it, not only at the run's `--conf`.

Confidence scores are not comparable between models (RT-DETR's and YOLO's are calibrated differently), so
one `--conf` can be generous to one model and strict with the other. With labels, from COCOeval's own
matching at IoU 0.5 (area "all", the same `evalImgs` as every accuracy figure, `matches.MatchTable`):

- precision, recall and F1 at a threshold c count the boxes scored ≥ c, as `accuracy.evaluate` does:
  per class TP / (TP + FP) (0 when no box is kept) and TP / labelled objects, then the mean over the
  classes with labelled objects; F1 = 2·P·R / (P + R) of those means (0 when both are 0);
- the F1-optimal threshold is the c, among the scores of the boxes themselves (where P and R change),
  with the highest F1; of equal F1s the highest c (fewer boxes for the same F1);
- recall at equal precision: P* is the lower of the models' precisions at their own F1-optimal thresholds,
  a precision every model reaches while finding objects; each model's recall at P* is its highest recall
  at any threshold where its precision is at least P*. At equal precision, more recall is more found.

Without labels: each model's score histogram, and boxes per picture as the threshold moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.compare.matches import MatchTable

if TYPE_CHECKING:
    import numpy as np

FAR_F1 = 0.05  # --conf is "far" from a model's best when its F1 there is this much below the best
GRID = tuple(round(0.01 * i, 2) for i in range(101))  # the thresholds a curve is reported at


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Precision, recall and F1 (class means, IoU 0.5) for the boxes scored at or above `conf`."""

    conf: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class OperatingCurve:
    """One model's precision, recall and F1 at the thresholds in `conf` (GRID), and its best F1."""

    model: str
    conf: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    best: OperatingPoint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ConfCheck:
    """Whether the run's `--conf` is far from a model's F1-optimal threshold: far when the F1 at `conf`
    is more than `tolerance` below the best F1 (`gap` = best F1 minus F1 at conf)."""

    model: str
    conf: float
    at_conf: OperatingPoint
    best: OperatingPoint
    gap: float
    far: bool
    tolerance: float = FAR_F1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EqualPrecision:
    """Every model's recall at the same precision `precision` (see the module's definition); a model's
    point is None if it never reaches that precision (cannot happen for P* itself)."""

    precision: float
    points: dict[str, OperatingPoint | None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Counts:
    """Per class with labelled objects: scores (descending) and cumulative TP/FP at IoU 0.5."""

    def __init__(self, table: MatchTable) -> None:
        import numpy as np

        self.classes = []
        scores = []
        for cat in table.cat_ids:
            m = table.classes[(cat, "all")]
            npos = int(m.labels.sum())
            if npos == 0:
                continue  # not in the class mean, as in accuracy.evaluate
            counted = m.tp[0] | m.fp[0]  # ignored boxes count as neither
            s = m.score[counted]
            tp = np.cumsum(m.tp[0][counted])
            fp = np.cumsum(m.fp[0][counted])
            self.classes.append((s, tp, fp, npos))
            scores.append(s)
        self.scores = np.unique(np.concatenate(scores)) if scores else np.zeros(0)

    def at(self, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean precision, mean recall and F1 at each threshold in `conf`."""
        import numpy as np

        conf = np.asarray(conf, dtype=float)
        if not self.classes:
            zero = np.zeros(len(conf))
            return zero, zero, zero
        p = np.zeros((len(self.classes), len(conf)))
        r = np.zeros_like(p)
        for k, (s, tp, fp, npos) in enumerate(self.classes):
            kept = np.searchsorted(-s, -conf, side="right")  # boxes with score ≥ conf
            t = np.where(kept > 0, tp[np.maximum(kept - 1, 0)] if len(s) else 0, 0)
            f = np.where(kept > 0, fp[np.maximum(kept - 1, 0)] if len(s) else 0, 0)
            p[k] = np.where(t + f > 0, t / np.maximum(t + f, 1), 0.0)
            r[k] = t / npos
        pm, rm = p.mean(axis=0), r.mean(axis=0)
        f1 = np.where(pm + rm > 0, 2 * pm * rm / np.where(pm + rm > 0, pm + rm, 1), 0.0)
        return pm, rm, f1


def point(table: MatchTable, conf: float) -> OperatingPoint:
    """Precision, recall and F1 at `conf` (equal to `accuracy.evaluate`'s precision and recall)."""
    p, r, f = _Counts(table).at([conf])
    return OperatingPoint(float(conf), float(p[0]), float(r[0]), float(f[0]))


def _points(counts: _Counts) -> list[OperatingPoint]:
    p, r, f = counts.at(counts.scores)
    return [OperatingPoint(*(float(v) for v in x)) for x in zip(counts.scores, p, r, f, strict=True)]


def best_f1(table: MatchTable) -> OperatingPoint:
    """The F1-optimal threshold (of equal F1s the highest), with its precision, recall and F1."""
    points = _points(_Counts(table))
    if not points:
        return OperatingPoint(1.0, 0.0, 0.0, 0.0)
    return max(points, key=lambda q: (q.f1, q.conf))


def curve(model: str, table: MatchTable, grid: Sequence[float] = GRID) -> OperatingCurve:
    """Precision, recall and F1 over the confidence range, and the F1-optimal point."""
    counts = _Counts(table)
    p, r, f = counts.at(grid)
    points = _points(counts)
    best = max(points, key=lambda q: (q.f1, q.conf)) if points else OperatingPoint(1.0, 0.0, 0.0, 0.0)
    return OperatingCurve(
        model, tuple(float(c) for c in grid), tuple(map(float, p)), tuple(map(float, r)),
        tuple(map(float, f)), best,
    )  # fmt: skip


def recall_at_precision(table: MatchTable, precision: float) -> OperatingPoint | None:
    """The highest recall at any threshold where precision ≥ `precision` (of equal recalls the highest
    threshold); None when no threshold reaches that precision."""
    reached = [q for q in _points(_Counts(table)) if q.precision >= precision]
    return max(reached, key=lambda q: (q.recall, q.conf)) if reached else None


def equal_precision(tables: Mapping[str, MatchTable]) -> EqualPrecision:
    """Each model's recall at P*, the lower of the models' precisions at their F1-optimal thresholds."""
    target = min(best_f1(t).precision for t in tables.values())
    return EqualPrecision(target, {m: recall_at_precision(t, target) for m, t in tables.items()})


def conf_check(model: str, table: MatchTable, conf: float, tolerance: float = FAR_F1) -> ConfCheck:
    """Is `conf` far from this model's F1-optimal threshold (F1 there more than `tolerance` below best)?"""
    at, best = point(table, conf), best_f1(table)
    gap = best.f1 - at.f1
    return ConfCheck(model, conf, at, best, gap, gap > tolerance, tolerance)


# --- without labels -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreProfile:
    """One model's scores without labels: `counts[i]` boxes scored in [edges[i], edges[i+1]) (the last
    bin includes 1), and the mean boxes per picture kept at each threshold in `thresholds`."""

    model: str
    pictures: int
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    thresholds: tuple[float, ...]
    boxes_per_picture: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_profile(
    model: str,
    scores_per_picture: Sequence[Sequence[float]],
    bins: int = 20,
    thresholds: Sequence[float] | None = None,
) -> ScoreProfile:
    """The histogram of every box's score over [0, 1], and boxes per picture at each threshold (by
    default 0.05 … 0.95). The run keeps boxes at or above `--conf`, so below it the figures are the
    boxes the run kept, not all the model could give."""
    import numpy as np

    flat = np.concatenate([np.asarray(s, dtype=float) for s in scores_per_picture] or [np.zeros(0)])
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(np.clip(flat, 0.0, 1.0), bins=edges)
    grid = np.round(np.arange(1, 20) * 0.05, 2) if thresholds is None else np.asarray(thresholds, float)
    n = len(scores_per_picture)
    per = [float((flat >= c).sum() / n) if n else 0.0 for c in grid]
    return ScoreProfile(
        model, n, tuple(map(float, edges)), tuple(map(int, counts)), tuple(map(float, grid)), tuple(per)
    )
