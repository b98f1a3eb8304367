"""How sure each figure is, and what it means for the choice: a run's raw evidence → an `Analysis`.

`loop.run_comparison` collects the evidence as it goes (`Evidence`: per model its detections at --conf,
its timed calls with the input each was on, its COCO rows down to the eval conf; per pair the matched /
only-A / only-B counts on each input) and calls `analyse` once at the end. The figures come from the
engine modules:

- `bootstrap`: paired bootstrap intervals of the mAP50-95 and mAP50 differences (labels), agreement and
  the p50 latency ratio (pictures resampled, each carrying its calls), and each model's own p50;
- `slices`: where each model wins, by object size, by clutter and by class (labels), agreement by box
  size and by boxes per picture, and the settled findings;
- `operating`: each model's precision / recall / F1 curve, its F1-optimal threshold and whether --conf
  is far from it, recall at equal precision (labels); score histograms without labels;
- `tide`: TIDE error types (labels); `duplicates`: the duplicate audit of NMS-free models; `boxes`:
  boxes per picture.

Every model's COCO rows are matched to the labels once (`accuracy.coco_eval`, one `evaluate`), and every
bootstrap figure uses the same seeded draws, so a report is reproducible. With one picture there is no
interval (each `Interval` says so); an interrupted run is analysed on what was done."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from detect_cli.compare import bootstrap, operating, slices
from detect_cli.compare.accuracy import Accuracy, coco_eval
from detect_cli.compare.bootstrap import RESAMPLES, SEED, Interval
from detect_cli.compare.boxes import BoxCounts, boxes_per_picture
from detect_cli.compare.duplicates import TWIN_IOU, DuplicateAudit, audit_duplicates, twins
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.matches import (
    ClassMatches,
    MatchTable,
    average_precision,
    match_table,
    mean_ap,
    picture_weights,
)
from detect_cli.compare.model_facts import ModelInfo
from detect_cli.compare.tide import ErrorBreakdown, error_breakdown
from detect_cli.results import Detection

if TYPE_CHECKING:
    import threading

    import numpy as np

MIN_PAIRED = 10  # inputs below which timed calls are resampled rather than inputs
SLOW_PICTURES = 60  # labelled pictures x models above which the analysis says it is running first
WHOLE_ANALYSIS = "the whole analysis (intervals, operating points, slices, error types)"  # when none was done


# --- the evidence ---------------------------------------------------------------------------------


@dataclass
class ModelEvidence:
    """One model's raw evidence: `wall_ms[k]` is a timed call on input `call_input[k]`; `detections`
    are its boxes at --conf per input index (inputs it ran on); `eval_rows` its COCO rows down to the
    eval conf on the labelled pictures; `accuracy` the run's own score of them."""

    info: ModelInfo
    wall_ms: Sequence[float]
    call_input: Sequence[int]
    detections: Mapping[int, Sequence[Detection]]
    eval_rows: np.ndarray | None = None
    accuracy: Accuracy | None = None
    max_det: int = 300


@dataclass
class PairEvidence:
    """Models `a` and `b` (indexes into `Evidence.models`) on the inputs every model ran on: per input
    (`inputs`, its index) the boxes matched, only in A, only in B (`agreement.match_detections`)."""

    a: int
    b: int
    inputs: list[int] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    only_a: list[int] = field(default_factory=list)
    only_b: list[int] = field(default_factory=list)

    def add(self, n: int, matched: int, only_a: int, only_b: int) -> None:
        self.inputs.append(n)
        self.matched.append(matched)
        self.only_a.append(only_a)
        self.only_b.append(only_b)


@dataclass
class Evidence:
    models: Sequence[ModelEvidence]
    pairs: Sequence[PairEvidence]
    conf: float
    eval_conf: float
    match_iou: float
    shared: Sequence[str]  # the class names every model knows
    labels: GroundTruth | None = None
    evaluated_ids: Sequence[int] = ()  # labelled pictures every model ran on, in run order


# --- the analysis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAnalysis:
    """One model: its p50 latency with an interval (pictures resampled), boxes per picture at --conf,
    and with labels its operating curve, the --conf check and TIDE's error types; without labels its
    score profile. `duplicates` for NMS-free models (with labels, what NMS afterwards would change)."""

    model: str
    latency_p50: Interval
    boxes: BoxCounts
    curve: operating.OperatingCurve | None = None
    conf_check: operating.ConfCheck | None = None
    errors: ErrorBreakdown | None = None
    scores: operating.ScoreProfile | None = None
    duplicates: DuplicateAudit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "latency_p50": self.latency_p50.to_dict(),
            "boxes": self.boxes.to_dict(),
            **{
                k: (v.to_dict() if v is not None else None)
                for k, v in (
                    ("curve", self.curve),
                    ("conf_check", self.conf_check),
                    ("errors", self.errors),
                    ("scores", self.scores),
                    ("duplicates", self.duplicates),
                )
            },
        }


@dataclass(frozen=True)
class PairAnalysis:
    """Models `a` and `b`: differences are a minus b (mAP in fractions), the speed ratio is a's p50
    over b's (above 1: a is slower); slices and findings from `slices` (labels)."""

    a: str
    b: str
    speed_ratio: Interval
    agreement: Interval
    map50_95: Interval | None = None
    map50: Interval | None = None
    sizes: tuple[slices.SliceDifference, ...] = ()
    clutter: tuple[slices.SliceDifference, ...] = ()
    classes: tuple[slices.SliceDifference, ...] = ()
    findings: tuple[slices.Finding, ...] = ()
    agreement_by_size: tuple[slices.AgreementSlice, ...] = ()
    agreement_by_boxes: tuple[slices.AgreementSlice, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"a": self.a, "b": self.b}
        for k in ("speed_ratio", "agreement", "map50_95", "map50"):
            v = getattr(self, k)
            out[k] = v.to_dict() if v is not None else None
        for k in ("sizes", "clutter", "classes", "findings", "agreement_by_size", "agreement_by_boxes"):
            out[k] = [x.to_dict() for x in getattr(self, k)]
        return out


@dataclass(frozen=True)
class Analysis:
    """Every interval, operating point, slice and error breakdown of a run (report.json["analysis"]).
    `pictures`: labelled pictures the accuracy figures rest on (labels), else inputs compared."""

    pictures: int
    labelled: bool
    resamples: int
    seed: int
    models: tuple[ModelAnalysis, ...]
    pairs: tuple[PairAnalysis, ...]
    equal_precision: operating.EqualPrecision | None = None
    notes: tuple[str, ...] = ()
    cut_short: tuple[str, ...] = ()  # the parts a stop during the analysis left out, in plain words

    def model(self, label: str) -> ModelAnalysis | None:
        return next((m for m in self.models if m.model == label), None)

    def pair(self, a: str, b: str) -> PairAnalysis | None:
        return next((p for p in self.pairs if {p.a, p.b} == {a, b}), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pictures": self.pictures,
            "labelled": self.labelled,
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": bootstrap.CONFIDENCE,
            "method": "percentile bootstrap, paired over pictures",
            "models": [m.to_dict() for m in self.models],
            "pairs": [p.to_dict() for p in self.pairs],
            "equal_precision": self.equal_precision.to_dict() if self.equal_precision else None,
            "notes": list(self.notes),
            "cut_short": list(self.cut_short),
        }


def slow(evidence: Evidence) -> bool:
    """Whether the analysis may take more than a few seconds (the caller says it is running)."""
    return evidence.labels is not None and len(evidence.evaluated_ids) * len(evidence.models) > SLOW_PICTURES


def analyse(
    evidence: Evidence,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    status: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> Analysis:
    """Every figure of `Analysis` from the run's evidence (see the module's docstring). `status` is told
    once, before the work, when it may take more than a few seconds. `stop` is looked at between steps
    (the matching to the labels, each model, each pair): once it is set, the steps left are not done and
    `cut_short` names what they would have given; every figure that is there is complete."""
    labelled = evidence.labels is not None and len(evidence.evaluated_ids) > 0
    n_pictures = len(evidence.evaluated_ids) if labelled else _inputs(evidence)
    if status and slow(evidence):
        status(
            f"analysing: {resamples:,} bootstrap resamples of {n_pictures} pictures per figure, "
            f"{len(evidence.models)} models"
        )
    steps = _Steps(stop)
    tables = steps.run(WHOLE_ANALYSIS, lambda: _tables(evidence) if labelled else {}) or {}
    models, pairs = [], []
    for k, e in enumerate(evidence.models):
        gives = "operating points and error types" if labelled else "score profile"
        m = steps.run(
            f"the latency interval, boxes per picture and {gives} of {e.info.label}",
            lambda k=k: _model(evidence, k, tables.get(k), seed, resamples),
        )
        models += [m] if m is not None else []
    for p in evidence.pairs:
        a, b = evidence.models[p.a].info.label, evidence.models[p.b].info.label
        pa = steps.run(
            f"the intervals{' and slices' if labelled else ''} of {a} vs {b}",
            lambda p=p: _pair(evidence, p, tables, seed, resamples),
        )
        pairs += [pa] if pa is not None else []
    equal = None
    if labelled and tables:
        labels = {evidence.models[k].info.label: t for k, t in tables.items()}
        equal = steps.run("recall at equal precision", lambda: operating.equal_precision(labels))
    notes = []
    if n_pictures < 2:
        notes.append(
            f"{'one picture' if n_pictures == 1 else 'no picture'}: no interval for accuracy or agreement, "
            "so no such difference is settled (speed: the timed calls resampled)"
        )
    return Analysis(
        n_pictures,
        labelled,
        resamples,
        seed,
        tuple(models),
        tuple(pairs),
        equal,
        tuple(notes),
        tuple(steps.left_out),
    )


class _Steps:
    """The analysis' steps, each done unless the stop was asked for before it began; `left_out` says
    what the steps not done would have given. A step once begun is finished: a figure is whole or
    absent, never half computed."""

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop
        self.left_out: list[str] = []

    def run(self, gives: str, step: Callable[[], Any]) -> Any:
        if self.stop is None or not self.stop.is_set():
            return step()
        if self.left_out != [WHOLE_ANALYSIS]:  # nothing was done: that says it all
            self.left_out.append(gives)
        return None


def _inputs(evidence: Evidence) -> int:
    return len(evidence.pairs[0].inputs) if evidence.pairs else 0


# --- per model ------------------------------------------------------------------------------------


def _tables(evidence: Evidence) -> dict[int, MatchTable]:
    """Each model's rows matched to the labels once (COCOeval.evaluate), on the same pictures and
    classes, areas pruned of the detections no IoU threshold counts (so the size slices resample less)."""
    import numpy as np

    assert evidence.labels is not None
    out = {}
    for k, m in enumerate(evidence.models):
        rows = m.eval_rows if m.eval_rows is not None else np.zeros((0, 7))
        ev = coco_eval(evidence.labels, rows, evidence.shared, evidence.evaluated_ids, m.max_det)
        out[k] = prune(match_table(ev))
    return out


def prune(table: MatchTable) -> MatchTable:
    """The same table without the detections that are ignored at every IoU threshold (an unmatched box
    outside a size range, say): they add to neither true nor false positives, so every AP is unchanged."""
    classes = {}
    for key, m in table.classes.items():
        keep = (m.tp | m.fp).any(axis=0)
        if keep.all():
            classes[key] = m
        else:
            classes[key] = ClassMatches(
                m.picture[keep], m.score[keep], m.tp[:, keep], m.fp[:, keep], m.labels
            )
    return replace(table, classes=classes)


def latency_p50(
    wall_ms: Sequence[float], call_input: Sequence[int], resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """A model's p50 latency (numpy's median of its timed calls) with a percentile bootstrap interval:
    the inputs resampled, each carrying all its calls (`bootstrap.weighted_median`), on the same draws
    as the pair figures."""
    import numpy as np

    wall = np.asarray(wall_ms, dtype=float)
    pics = np.asarray(call_input)
    figure = "p50 latency (ms)"
    if not len(wall):
        return bootstrap.interval(figure, "level", None, np.zeros(0), 0, seed)
    ids = np.unique(pics) if len(pics) == len(wall) else np.zeros(0)
    estimate = float(np.median(wall))
    n = len(ids)
    if n < MIN_PAIRED:  # few inputs: the timed calls are resampled instead
        if len(wall) < 2:
            return bootstrap.interval(figure, "level", estimate, np.zeros(0), len(wall), seed, unit="call")
        rng = np.random.default_rng(seed)
        reps = np.median(wall[rng.integers(0, len(wall), (resamples, len(wall)))], axis=1)
        method = "percentile bootstrap, calls independently"
        return bootstrap.interval(figure, "level", estimate, reps, len(wall), seed, method, unit="call")
    at = np.searchsorted(ids, pics)
    w = picture_weights(bootstrap.draws(n, resamples, seed), n)
    return bootstrap.interval(figure, "level", estimate, bootstrap.weighted_median(wall, w[:, at]), n, seed)


def _model(evidence: Evidence, k: int, table: MatchTable | None, seed: int, resamples: int) -> ModelAnalysis:
    import numpy as np

    m = evidence.models[k]
    label = m.info.label
    shared = frozenset(n.casefold() for n in evidence.shared)
    pictures = [tuple(d for d in dets if d.class_name.casefold() in shared) for dets in m.detections.values()]
    out = ModelAnalysis(
        label,
        latency_p50(m.wall_ms, m.call_input, resamples, seed),
        boxes_per_picture(pictures, evidence.conf),
    )
    if table is None:  # no labels: what its scores look like, and its twins
        scores = operating.score_profile(label, [[d.confidence for d in dets] for dets in pictures])
        audit = DuplicateAudit(twins(pictures, evidence.conf)) if m.info.nms_free else None
        return replace(out, scores=scores, duplicates=audit)
    gt = evidence.labels
    assert gt is not None
    rows = m.eval_rows if m.eval_rows is not None else np.zeros((0, 7))
    ids = list(evidence.evaluated_ids)
    args = (gt, rows, evidence.shared, ids)
    audit = None
    if m.info.nms_free:
        audit = audit_duplicates(
            gt,
            rows,
            m.info.iou if m.info.iou is not None else TWIN_IOU,
            evidence.shared,
            ids,
            conf=evidence.conf,
            eval_conf=evidence.eval_conf,
            max_det=m.max_det,
            before=m.accuracy,
        )
    return replace(
        out,
        curve=operating.curve(label, table),
        conf_check=operating.conf_check(label, table, evidence.conf),
        errors=error_breakdown(*args, conf=evidence.conf, max_det=m.max_det),
        duplicates=audit,
    )


# --- per pair -------------------------------------------------------------------------------------


def _pair(
    evidence: Evidence, p: PairEvidence, tables: Mapping[int, MatchTable], seed: int, resamples: int
) -> PairAnalysis:
    ma, mb = evidence.models[p.a], evidence.models[p.b]
    la, lb = ma.info.label, mb.info.label
    shared = frozenset(n.casefold() for n in evidence.shared)
    both = [(ma.detections[n], mb.detections[n]) for n in p.inputs]
    out = PairAnalysis(
        la,
        lb,
        speed_ratio=_speed_ratio(ma, mb, resamples, seed),
        agreement=bootstrap.agreement(p.matched, p.only_a, p.only_b, resamples, seed),
        agreement_by_size=slices.agreement_by_size(both, evidence.match_iou, shared, resamples, seed),
        agreement_by_boxes=slices.agreement_by_boxes(p.matched, p.only_a, p.only_b, resamples, seed),
    )
    if p.a not in tables or p.b not in tables:
        return out
    ta, tb = tables[p.a], tables[p.b]
    assert evidence.labels is not None
    map50_95, map50, classes = _overall_and_classes(
        la, ta, lb, tb, evidence.labels.categories, seed, resamples
    )
    sizes = slices.size_slices(la, ta, lb, tb, resamples, seed)
    clutter = slices.clutter_slices(la, ta, lb, tb, resamples, seed)
    return replace(
        out,
        map50_95=map50_95,
        map50=map50,
        sizes=sizes,
        clutter=clutter,
        classes=classes,
        findings=slices.findings([*sizes, *clutter, *classes]),
    )


def _speed_ratio(a: ModelEvidence, b: ModelEvidence, resamples: int, seed: int) -> Interval:
    """`bootstrap.speed_ratio`, paired by input; on fewer than `MIN_PAIRED` inputs the calls (at least
    20: `run.timed_runs`) are resampled on their own, a picture's calls being nearly alike."""
    few = len(set(a.call_input) | set(b.call_input)) < MIN_PAIRED
    pa, pb = (None, None) if few else (a.call_input, b.call_input)
    return bootstrap.speed_ratio(a.wall_ms, b.wall_ms, pa, pb, resamples, seed)


def _overall_and_classes(
    a: str,
    ta: MatchTable,
    b: str,
    tb: MatchTable,
    names: Mapping[int, str],
    seed: int,
    resamples: int,
) -> tuple[Interval, Interval, tuple[slices.SliceDifference, ...]]:
    """The mAP50-95 and mAP50 differences (`bootstrap.map_differences`) and the per-class AP50-95
    differences (`slices.class_slices`) from one AP computation per model on the shared draws: the
    same numbers as those functions give, at half the cost."""
    import numpy as np

    n = ta.pictures
    if ta.image_ids != tb.image_ids or ta.cat_ids != tb.cat_ids:
        raise ValueError("the two models were not evaluated on the same pictures and classes")
    ones = np.ones((1, n))
    ap_a, ap_b = average_precision(ta, ones), average_precision(tb, ones)
    if n >= 2:
        w = picture_weights(bootstrap.draws(n, resamples, seed), n)
        rep_a, rep_b = average_precision(ta, w), average_precision(tb, w)
    else:
        rep_a = rep_b = np.full((0, len(ta.iou_thrs), len(ta.cat_ids)), np.nan)
    (ea, ea50), (eb, eb50) = mean_ap(ap_a), mean_ap(ap_b)
    (ra, ra50), (rb, rb50) = mean_ap(rep_a), mean_ap(rep_b)

    def iv(figure: str, est: float, reps: np.ndarray) -> Interval:
        value = None if est != est else est
        return bootstrap.interval(figure, "difference", value, reps, n, seed)

    overall = iv("mAP50-95 difference", float(ea[0] - eb[0]), ra - rb)
    at50 = iv("mAP50 difference", float(ea50[0] - eb50[0]), ra50 - rb50)
    va, vb = ap_a.mean(axis=1)[0], ap_b.mean(axis=1)[0]
    reps = rep_a.mean(axis=1) - rep_b.mean(axis=1)  # (B, K)
    classes = []
    for k, cat in enumerate(ta.cat_ids):
        if np.isnan(va[k]):
            continue  # no labelled object of this class
        diff = bootstrap.interval(
            "AP50-95 difference", "difference", float(va[k] - vb[k]), reps[:, k], n, seed
        )
        classes.append(
            slices.SliceDifference("class", names.get(cat, str(cat)), a, b, float(va[k]), float(vb[k]), diff)
        )
    return overall, at50, tuple(classes)
