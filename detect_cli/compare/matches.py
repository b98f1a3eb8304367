"""COCOeval's per-picture matches, kept once, and AP recomputed from them for any multiset of pictures.

A bootstrap needs mAP on a thousand resamples of the pictures; running COCOeval a thousand times is far
too slow. The matching of detections to labels happens per picture and class (`COCOeval.evaluate`), so
it does not change when pictures are repeated or left out: only `accumulate` (sorting the detections by
score, counting true and false positives, interpolating precision at 101 recall points) does. A
`MatchTable` keeps `evaluate`'s result in arrays, and `average_precision` redoes `accumulate` for many
resamples at once, each given as picture multiplicities (weights): a picture drawn twice counts its
detections and labels twice, a picture not drawn counts nothing.

Ties in scores: COCOeval sorts the detections of all pictures by score with a stable sort, pictures in
id order; here a picture drawn k times contributes its detections as k adjacent copies. With distinct
scores both give the same curve; copies of one detection are identical, so their order never matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

AREAS = ("all", "small", "medium", "large")  # COCOeval's default area ranges, in its order
SIZE_LIMITS = (32**2, 96**2)  # COCO's small/medium/large boundaries, in pixels of area
_CHUNK = 4_000_000  # array elements per block of resamples (about 32 MB of float64 per array)


@dataclass(frozen=True)
class ClassMatches:
    """One class at one area range, as COCOeval.accumulate sees it: the detections of every picture
    sorted by score (stable, pictures in id order), the picture each came from, whether it is a true or
    a false positive at each IoU threshold (an ignored detection is neither), and the labelled objects
    that count (not ignored) per picture."""

    picture: np.ndarray  # (D,) index into MatchTable.image_ids
    score: np.ndarray  # (D,) descending
    tp: np.ndarray  # (T, D) bool
    fp: np.ndarray  # (T, D) bool
    labels: np.ndarray  # (N,) labelled objects per picture


@dataclass(frozen=True)
class MatchTable:
    """A model's detections matched to the labels by COCOeval.evaluate, per class and area range."""

    image_ids: tuple[int, ...]
    cat_ids: tuple[int, ...]
    iou_thrs: np.ndarray  # (T,) 0.50 … 0.95
    rec_thrs: np.ndarray  # (R,) 101 recall points
    classes: dict[tuple[int, str], ClassMatches]  # (category id, area name) → matches

    @property
    def pictures(self) -> int:
        return len(self.image_ids)

    def restrict(self, pictures: Sequence[int]) -> MatchTable:
        """The same table with only these pictures' detections and labels (positions kept): a figure on
        a subset of the pictures, without carrying the others' detections through every resample."""
        import numpy as np

        keep = np.zeros(self.pictures, dtype=bool)
        keep[list(pictures)] = True
        classes = {}
        for key, m in self.classes.items():
            on = keep[m.picture]
            classes[key] = ClassMatches(
                m.picture[on], m.score[on], m.tp[:, on], m.fp[:, on], np.where(keep, m.labels, 0)
            )
        return replace(self, classes=classes)

    def labels_per_picture(self) -> np.ndarray:
        """Labelled objects (not ignored) per picture, all classes together (area "all")."""
        import numpy as np

        total = np.zeros(self.pictures, dtype=np.int64)
        for c in self.cat_ids:
            total += self.classes[(c, "all")].labels
        return total


def match_table(ev: Any) -> MatchTable:
    """Arrays from a COCOeval after `evaluate()` (see `accuracy.coco_eval`), at its largest maxDets."""
    import numpy as np

    p = ev.params
    img_ids = [int(i) for i in p.imgIds]
    cat_ids = [int(c) for c in p.catIds]
    n, n_areas = len(img_ids), len(p.areaRng)
    max_det = p.maxDets[-1]
    t = len(p.iouThrs)
    classes = {}
    for k, cat in enumerate(cat_ids):
        for a, area in enumerate(AREAS[:n_areas]):
            found = [(i, e) for i in range(n) if (e := ev.evalImgs[(k * n_areas + a) * n + i]) is not None]
            labels = np.zeros(n, dtype=np.int64)
            for i, e in found:
                labels[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            if found:
                scores = np.concatenate([np.asarray(e["dtScores"][:max_det], dtype=float) for _, e in found])
                pics = np.concatenate([np.full(len(e["dtScores"][:max_det]), i) for i, e in found])
                dtm = np.concatenate([e["dtMatches"][:, :max_det] for _, e in found], axis=1)
                dtig = np.concatenate([e["dtIgnore"][:, :max_det] for _, e in found], axis=1)
            else:
                scores, pics = np.zeros(0), np.zeros(0, dtype=np.int64)
                dtm = dtig = np.zeros((t, 0))
            order = np.argsort(-scores, kind="mergesort")  # as accumulate sorts them
            dtm, dtig = dtm[:, order].astype(bool), dtig[:, order].astype(bool)
            classes[(cat, area)] = ClassMatches(
                picture=pics[order].astype(np.int64),
                score=scores[order],
                tp=dtm & ~dtig,
                fp=~dtm & ~dtig,
                labels=labels,
            )
    return MatchTable(tuple(img_ids), tuple(cat_ids), np.asarray(p.iouThrs), np.asarray(p.recThrs), classes)


def average_precision(table: MatchTable, weights: np.ndarray, area: str = "all") -> np.ndarray:
    """AP per resample, IoU threshold and class: an array (B, T, K), NaN where the class has no labelled
    object in the resample (COCOeval's -1). `weights` (B, N) is how many times each picture is in each
    resample (all ones: the pictures as they are).

    For each class this is COCOeval.accumulate's precision, averaged over its 101 recall points: true and
    false positives summed down the score order (each detection counted as often as its picture), recall
    = TP / labelled objects, precision = TP / (TP + FP + eps), precision made non-increasing from the
    right (the interpolated precision), read at the first detection whose recall reaches each recall
    point (0 past the last one)."""
    import numpy as np

    w = np.asarray(weights, dtype=float)
    if w.ndim == 1:
        w = w[None]
    b, t, k = len(w), len(table.iou_thrs), len(table.cat_ids)
    out = np.full((b, t, k), np.nan)
    for j, cat in enumerate(table.cat_ids):
        m = table.classes[(cat, area)]
        npig = w @ m.labels.astype(float)  # (B,)
        d = len(m.score)
        step = max(1, _CHUNK // max(1, d))
        for lo in range(0, b, step):
            rows = slice(lo, min(b, lo + step))
            out[rows, :, j] = _class_ap(m, w[rows], npig[rows], table.rec_thrs)
    return out


def _class_ap(m: ClassMatches, w: np.ndarray, npig: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """(B, T) AP of one class for a block of resamples; NaN where no labelled object counts.

    Only the true positives' points of the precision-recall curve are computed: recall rises only at a
    true positive, so the first point reaching a recall level above 0 is one, and a false positive's
    precision is below that of the true positive before it, so it never raises the interpolated
    precision that is read there. At a true positive, TP is the running sum of the true positives'
    weights and TP + FP that of every counted (not ignored) detection's: the same integer-valued floats
    as COCOeval's cumulative sums, so precision and recall are bit for bit its own."""
    import numpy as np

    b, t = len(w), m.tp.shape[0]
    ap = np.zeros((b, t))
    present = npig > 0
    ap[~present] = np.nan
    if not len(m.score) or not present.any():
        return ap  # labels but no detection: precision 0 everywhere, as COCOeval
    wd = w[present][:, m.picture]  # (B', D) each detection counted as often as its picture
    npos = npig[present][:, None]
    counted = m.tp | m.fp  # (T, D): ignored detections are neither
    totals: dict[bytes, np.ndarray] = {}  # running TP + FP, per distinct set of counted detections
    needed = _tp_needed(npos[:, 0], rec_thrs)  # (B', R) the TP count at which recall reaches each level
    for i in range(t):
        pos = np.flatnonzero(m.tp[i])
        if not len(pos):
            continue  # no true positive at this IoU: AP 0
        key = counted[i].tobytes()
        if key not in totals:
            totals[key] = np.cumsum(wd * counted[i], axis=1)
        tp = np.cumsum(wd[:, pos], axis=1)  # (B', P)
        pr = tp / (totals[key][:, pos] + np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # interpolated precision
        ap[present, i] = _read_at(tp, needed, pr).mean(axis=1)
    return ap


def _tp_needed(npos: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """(B, R): per resample, the smallest TP count k whose recall k / npos (the same float division as
    COCOeval's tp / npos) reaches each recall threshold. Recall is k / npos for an integer k, so "recall
    reaches r" is "TP reaches k", an exact integer comparison."""
    import numpy as np

    out = np.empty((len(npos), len(rec_thrs)), dtype=np.int64)
    for v in np.unique(npos):
        levels = np.arange(int(v) + 1, dtype=float) / v  # recall at k = 0 … npos true positives
        out[npos == v] = np.searchsorted(levels, rec_thrs, side="left")
    return out


def _read_at(tp: np.ndarray, needed: np.ndarray, pr: np.ndarray) -> np.ndarray:
    """Per row: `pr` at the first point whose TP count reaches `needed` (so whose recall reaches each
    recall threshold: COCOeval's np.searchsorted(rc, recThrs, side="left")), 0 past the last one, for
    every row at once. A row's counts never fall, so that point's index is how many of its counts are
    below `needed`: a histogram of the counts, summed up (linear, where a search costs a log per level),
    all in exact integers."""
    import numpy as np

    n, d = tp.shape
    counts = tp.astype(np.int64)
    span = int(max(counts.max(initial=0), needed.max(initial=0))) + 1
    offset = (np.arange(n, dtype=np.int64) * span)[:, None]
    hist = np.bincount((counts + offset).ravel(), minlength=n * span).reshape(n, span)
    below = np.cumsum(hist, axis=1) - hist  # below[i, v]: counts of row i under v
    idx = np.take_along_axis(below, needed, axis=1)
    return np.where(idx < d, np.take_along_axis(pr, np.minimum(idx, d - 1), axis=1), 0.0)


def _read_at_by_search(tp: np.ndarray, needed: np.ndarray, pr: np.ndarray) -> np.ndarray:
    """`_read_at` as a search of every row at once (rows kept apart by an offset larger than any count):
    the reference the tests hold it to."""
    import numpy as np

    n, d = tp.shape
    counts = tp.astype(np.int64)
    span = int(max(counts.max(initial=0), needed.max(initial=0))) + 1
    offset = (np.arange(n, dtype=np.int64) * span)[:, None]
    keys = (counts + offset).ravel()
    idx = np.searchsorted(keys, (needed + offset).ravel(), side="left").reshape(n, -1)
    idx -= (np.arange(n) * d)[:, None]
    return np.where(idx < d, np.take_along_axis(pr, np.minimum(idx, d - 1), axis=1), 0.0)


def mean_ap(ap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mAP50-95, mAP50) per resample from `average_precision`'s (B, T, K): the mean over classes with
    labelled objects (NaN when none has) of the AP averaged over IoU thresholds, and at IoU 0.5."""

    per_class = ap.mean(axis=1)  # (B, K)
    return _nanmean(per_class), _nanmean(ap[:, 0, :])


def _nanmean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN (without numpy's warning) where all are NaN."""
    import numpy as np

    ok = ~np.isnan(x)
    count = ok.sum(axis=-1)
    total = np.where(ok, x, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def picture_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """Multiplicities (B, n) from resampled picture positions (B, m): how often each picture was drawn."""
    import numpy as np

    idx = np.asarray(indices)
    b = len(idx)
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)
