"""`detect compare`: several detectors on the same inputs — speed, agreement, accuracy.

The inputs arrive as one stream of `Frame`s, decoded images or video frames alike; each frame is decoded
once and given to every model. The models are run frame by frame, interleaved (their order rotates from
one frame to the next), so drift on a busy machine hits all of them alike. Speed comes from timed calls
after warm-up; agreement from one-to-one matching of their detections; accuracy, when labels are given,
from pycocotools on COCO-format results. Everything is returned as dataclasses; report.py presents them.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError, LabelsError
from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.signals import Stop, stop_on_signals

if TYPE_CHECKING:
    import numpy as np

    from detect_cli.labels import GroundTruth
    from detect_cli.models import Detector
    from detect_cli.pipeline import Frame, Progress

MATCH_IOU = 0.5
EVAL_CONF = 0.001  # as `yolo val`: mAP needs the whole precision-recall curve, so keep nearly every box


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeedStats:
    """Per-image timings of one model. Stages as ultralytics measures them; latency is the wall time of
    one `predict` call on one image (stages plus the Python around them); images/s is 1000 / its mean."""

    calls: int
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    images_per_s: float

    @classmethod
    def from_calls(cls, speeds: Sequence[Speed], wall_ms: Sequence[float]) -> SpeedStats:
        import numpy as np

        if not speeds:
            return cls(0, *([float("nan")] * 7))
        wall = np.asarray(wall_ms, dtype=float)
        mean = float(wall.mean())
        return cls(
            calls=len(speeds),
            preprocess_ms=float(np.mean([s.preprocess for s in speeds])),
            inference_ms=float(np.mean([s.inference for s in speeds])),
            postprocess_ms=float(np.mean([s.postprocess for s in speeds])),
            latency_mean_ms=mean,
            latency_p50_ms=float(np.percentile(wall, 50)),
            latency_p95_ms=float(np.percentile(wall, 95)),
            images_per_s=1000.0 / mean if mean > 0 else float("nan"),
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What was compared: the model, its size, and how it was run."""

    label: str
    name: str
    family: str
    location: str
    official: bool
    untrained: bool
    classes: int
    params_m: float | None
    gflops: float | None
    device: str
    backend: str
    precision: str
    imgsz: int
    published_map50_95: float | None = None
    published_source: str | None = None


@dataclass(frozen=True, slots=True)
class ClassAgreement:
    class_name: str
    matched: int
    only_a: int
    only_b: int
    mean_iou: float | None

    @property
    def agreement(self) -> float | None:
        """Share of both models' detections that have a partner in the other: 2·matched / (n_a + n_b)."""
        total = 2 * self.matched + self.only_a + self.only_b
        return 2 * self.matched / total if total else None


@dataclass(frozen=True, slots=True)
class PairAgreement:
    """Model A vs model B over all images: one-to-one matches (same class, IoU ≥ 0.5, most confident
    pairs first), boxes only one of them found, and the mean IoU of the matches."""

    a: str
    b: str
    images: int
    overall: ClassAgreement
    per_class: tuple[ClassAgreement, ...]


@dataclass(frozen=True, slots=True)
class ClassAccuracy:
    class_name: str
    instances: int
    map50_95: float | None
    map50: float | None
    precision: float | None
    recall: float | None


@dataclass(frozen=True, slots=True)
class Accuracy:
    """COCO-style scores against the labels. mAP uses every box down to `eval_conf` (as `yolo val`);
    precision and recall are at IoU 0.5 for the boxes at or above `conf`, the threshold the user runs
    with. Overall values are means over the classes that have labels (as ultralytics reports them)."""

    map50_95: float
    map50: float
    precision: float
    recall: float
    conf: float
    eval_conf: float
    images: int
    instances: int
    per_class: tuple[ClassAccuracy, ...]


@dataclass(frozen=True, slots=True)
class ModelResult:
    info: ModelInfo
    speed: SpeedStats
    images_ok: int
    images_failed: int
    detections: int
    detections_per_class: dict[str, int]
    accuracy: Accuracy | None = None


@dataclass(frozen=True, slots=True)
class CompareSettings:
    """The same for every model."""

    imgsz: int = 640
    conf: float = 0.25
    warmup: int = 2
    runs: int = 1
    eval_conf: float = EVAL_CONF
    match_iou: float = MATCH_IOU


@dataclass(frozen=True, slots=True)
class VideoRun:
    """How video sources were compared: each processed frame is one input. `side_by_side` names the
    side-by-side videos written (relative to the report folder), `codec` the codec they use."""

    videos: int
    vid_stride: int = 1
    max_frames: int | None = None
    side_by_side: tuple[str, ...] = ()
    codec: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Everything `detect compare` measured; `to_dict` is report.json. `inputs` counts the images, or
    for a video source (`video` set) the frames, that went through the comparison."""

    settings: CompareSettings
    models: tuple[ModelResult, ...]
    pairs: tuple[PairAgreement, ...]
    shared_classes: tuple[str, ...]
    inputs: int
    failed: tuple[tuple[str, str], ...]
    labels: str | None = None
    notes: tuple[str, ...] = ()
    interrupted: bool = False
    video: VideoRun | None = None

    @property
    def unit(self) -> str:
        """What one input is: "image", or "frame" for video sources."""
        return "frame" if self.video else "image"

    def to_dict(self) -> dict[str, Any]:
        d = _rounded(asdict(self))
        for pair, raw in zip(d["pairs"], self.pairs, strict=True):
            pair["overall"]["agreement"] = _round(raw.overall.agreement)
            for row, c in zip(pair["per_class"], raw.per_class, strict=True):
                row["agreement"] = _round(c.agreement)
        d["failed"] = [{"source": s, "error": e} for s, e in self.failed]
        return d


def _round(v: float | None, nd: int = 4) -> float | None:
    if v is None or v != v:  # NaN has no JSON spelling: say "not measured"
        return None
    return round(v, nd)


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return _round(obj)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    return obj


# --- model facts ----------------------------------------------------------------------------------


def model_info(label: str, detector: Detector) -> ModelInfo:
    """Params (M) and GFLOPs from ultralytics' own counters, for PyTorch models; None for exported ones."""
    import torch
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    from detect_cli.models import COCO_VAL_SOURCE, get_spec

    params_m = gflops = None
    net = getattr(detector.model, "model", None)
    if isinstance(net, torch.nn.Module):
        params_m = get_num_params(net) / 1e6
        gflops = get_flops(net, detector.options.imgsz) or None  # 0.0 means "could not count"
    spec = get_spec(detector.ref.name) if detector.ref.official else None
    o = detector.options
    return ModelInfo(
        label=label,
        name=detector.ref.name,
        family=detector.family,
        location=detector.ref.location,
        official=detector.ref.official,
        untrained=detector.ref.untrained,
        classes=len(detector.names),
        params_m=params_m,
        gflops=gflops,
        device=o.device,
        backend=detector.backend,
        precision=detector.precision,
        imgsz=o.imgsz,
        published_map50_95=spec.published_map if spec else None,
        published_source=COCO_VAL_SOURCE if spec else None,
    )


def unique_labels(names: Sequence[str]) -> list[str]:
    """Display names, made unique (a model compared with itself is 'x' and 'x-2')."""
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def shared_class_names(detectors: Sequence[Detector]) -> tuple[tuple[str, ...], list[str]]:
    """Class names every model knows (in the first model's order), and a note when they differ."""
    keys = [{n.casefold() for n in d.names.values()} for d in detectors]
    common = set.intersection(*keys)
    shared = tuple(n for n in detectors[0].names.values() if n.casefold() in common)
    if not shared:
        raise BadOptionError(
            "the models share no class names ("
            + "; ".join(f"{d.name}: {', '.join(list(d.names.values())[:4])}…" for d in detectors)
            + "), so their detections cannot be compared"
        )
    notes = []
    if any(k != keys[0] for k in keys):
        counts = ", ".join(f"{d.name} has {len(d.names)}" for d in detectors)
        notes.append(
            f"the models' classes differ ({counts}): agreement and accuracy use the {len(shared)} "
            "class names they share"
        )
    return shared, notes


# --- agreement ------------------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4 xyxy) with every box in b (M,4): an N x M matrix."""
    import numpy as np

    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True, slots=True)
class ImageMatch:
    """One image's one-to-one matching: (class, IoU) per matched pair; unmatched boxes of each side."""

    matched: tuple[tuple[str, float], ...]
    only_a: tuple[Detection, ...]
    only_b: tuple[Detection, ...]


def match_detections(
    a: Sequence[Detection],
    b: Sequence[Detection],
    iou_threshold: float = MATCH_IOU,
    classes: frozenset[str] | None = None,
) -> ImageMatch:
    """Pair boxes of the same class with IoU ≥ threshold, one-to-one, greedily: candidate pairs are taken
    in order of their combined confidence (then IoU), so the most confident boxes are matched first and
    the result does not depend on which model is A. Boxes of classes outside `classes` are ignored."""
    import numpy as np

    if classes is not None:
        a = [d for d in a if d.class_name.casefold() in classes]
        b = [d for d in b if d.class_name.casefold() in classes]
    candidates: list[tuple[float, float, int, int]] = []
    if a and b:
        iou = box_iou(np.array([d.xyxy for d in a]), np.array([d.xyxy for d in b]))
        same = np.array([d.class_name.casefold() for d in a])[:, None] == np.array(
            [d.class_name.casefold() for d in b]
        )
        for i, j in zip(*np.nonzero(same & (iou >= iou_threshold)), strict=True):
            candidates.append((a[i].confidence + b[j].confidence, float(iou[i, j]), int(i), int(j)))
    candidates.sort(reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for _, v, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched.append((a[i].class_name, v))
    return ImageMatch(
        tuple(matched),
        tuple(d for i, d in enumerate(a) if i not in used_a),
        tuple(d for j, d in enumerate(b) if j not in used_b),
    )


class AgreementTally:
    """Running totals of `match_detections` over the images of one pair of models."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b
        self.images = 0
        self.ious: defaultdict[str, list[float]] = defaultdict(list)
        self.only_a: Counter[str] = Counter()
        self.only_b: Counter[str] = Counter()

    def add(self, match: ImageMatch) -> None:
        self.images += 1
        for name, v in match.matched:
            self.ious[name].append(v)
        self.only_a.update(d.class_name for d in match.only_a)
        self.only_b.update(d.class_name for d in match.only_b)

    def result(self) -> PairAgreement:
        names = sorted(set(self.ious) | set(self.only_a) | set(self.only_b))
        rows = tuple(
            ClassAgreement(
                n,
                len(self.ious[n]),
                self.only_a[n],
                self.only_b[n],
                sum(self.ious[n]) / len(self.ious[n]) if self.ious[n] else None,
            )
            for n in names
        )
        all_ious = [v for n in names for v in self.ious[n]]
        overall = ClassAgreement(
            "all",
            len(all_ious),
            sum(self.only_a.values()),
            sum(self.only_b.values()),
            sum(all_ious) / len(all_ious) if all_ious else None,
        )
        return PairAgreement(self.a, self.b, self.images, overall, rows)


# --- accuracy -------------------------------------------------------------------------------------


def clip_detections(detections: Sequence[Detection], width: int, height: int) -> tuple[Detection, ...]:
    """Boxes clipped to the image. ultralytics' RT-DETR predictor leaves boxes that overhang the image
    unclipped while YOLO's is clipped (and `val` clips both); clipping puts every model on one footing."""
    return tuple(
        replace(
            d,
            xyxy=(
                min(max(x1, 0.0), width),
                min(max(y1, 0.0), height),
                min(max(x2, 0.0), width),
                min(max(y2, 0.0), height),
            ),
        )
        for d in detections
        for x1, y1, x2, y2 in [d.xyxy]
    )


def detections_to_coco(
    detections: Sequence[Detection], image_id: int, category_by_name: Mapping[str, int]
) -> np.ndarray:
    """Rows [image_id, x, y, w, h, score, category_id] (pycocotools' array form) for known classes."""
    import numpy as np

    rows = [
        (image_id, x1, y1, x2 - x1, y2 - y1, d.confidence, category_by_name[d.class_name.casefold()])
        for d in detections
        if d.class_name.casefold() in category_by_name
        for x1, y1, x2, y2 in [d.xyxy]
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def evaluate(
    gt: GroundTruth,
    predictions: np.ndarray,
    class_names: Sequence[str] | None = None,
    image_ids: Sequence[int] | None = None,
    conf: float = 0.25,
    eval_conf: float = EVAL_CONF,
    max_det: int = 300,
) -> Accuracy:
    """Score COCO-format predictions (rows from `detections_to_coco`) with pycocotools' COCOeval.

    Only label classes whose names are in `class_names` are scored (all of them when None), on
    `image_ids` (all labelled images when None). Precision and recall come from COCOeval's own
    per-image matching at IoU 0.5, counting the boxes scored at or above `conf`.
    """
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    wanted = None if class_names is None else {n.casefold() for n in class_names}
    cat_ids = sorted(c for c, n in gt.categories.items() if wanted is None or n.casefold() in wanted)
    img_ids = sorted(gt.image_ids.values()) if image_ids is None else sorted(image_ids)
    if not cat_ids:
        raise LabelsError(f"the labels ({gt.path}) share no class names with the models")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = gt.coco
        coco_gt.createIndex()
        preds = predictions[np.isin(predictions[:, 6], cat_ids) & np.isin(predictions[:, 0], img_ids)]
        coco_dt = coco_gt.loadRes(preds) if len(preds) else COCO()
        if not len(preds):
            coco_dt.dataset = {
                "images": gt.coco["images"],
                "categories": gt.coco["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.catIds = cat_ids
        ev.params.imgIds = img_ids
        ev.params.maxDets = [1, 10, max_det]  # score every box the model returns, as `yolo val` does
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # [IoU, recall, class] at area "all", max_det
    tp, fp, npos = _counts_at_conf(ev, conf)
    in_scope = set(img_ids)
    instances = Counter(
        a["category_id"] for a in gt.coco["annotations"] if not a.get("iscrowd") and a["image_id"] in in_scope
    )
    rows = []
    for k, cat in enumerate(cat_ids):
        p_k = precision[:, :, k]
        has_gt = npos[cat] > 0
        rows.append(
            ClassAccuracy(
                gt.categories[cat],
                instances[cat],
                float(p_k[p_k > -1].mean()) if has_gt and (p_k > -1).any() else None,
                float(p_k[0][p_k[0] > -1].mean()) if has_gt and (p_k[0] > -1).any() else None,
                (tp[cat] / (tp[cat] + fp[cat]) if tp[cat] + fp[cat] else 0.0) if has_gt else None,
                tp[cat] / npos[cat] if has_gt else None,
            )
        )
    scored = [r for r in rows if r.instances]

    def mean(values: list[float | None]) -> float:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else 0.0

    return Accuracy(
        map50_95=mean([r.map50_95 for r in scored]),
        map50=mean([r.map50 for r in scored]),
        precision=mean([r.precision for r in scored]),
        recall=mean([r.recall for r in scored]),
        conf=conf,
        eval_conf=eval_conf,
        images=len(img_ids),
        instances=sum(instances[c] for c in cat_ids),
        per_class=tuple(rows),
    )


def _counts_at_conf(ev: Any, conf: float) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """True and false positives at IoU 0.5 among boxes scored ≥ conf, and labelled objects, per class."""
    import numpy as np

    tp: Counter[int] = Counter()
    fp: Counter[int] = Counter()
    npos: Counter[int] = Counter()
    all_area = ev.params.areaRng[0]
    for e in ev.evalImgs:
        if e is None or e["aRng"] != all_area:
            continue
        cat = e["category_id"]
        npos[cat] += int((~np.asarray(e["gtIgnore"], dtype=bool)).sum())
        scores = np.asarray(e["dtScores"])
        if not len(scores):
            continue
        keep = (scores >= conf) & ~e["dtIgnore"][0].astype(bool)
        hit = e["dtMatches"][0] > 0
        tp[cat] += int((keep & hit).sum())
        fp[cat] += int((keep & ~hit).sum())
    return tp, fp, npos


# --- the run --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _conf(detector: Detector, conf: float) -> Iterator[None]:
    """Run a detector at another confidence threshold for a while (the accuracy pass)."""
    saved = detector.options
    detector.options = replace(saved, conf=conf)
    try:
        yield
    finally:
        detector.options = saved


class _ModelTally:
    def __init__(self) -> None:
        self.speeds: list[Speed] = []
        self.wall_ms: list[float] = []
        self.ok = 0
        self.failed = 0
        self.per_class: Counter[str] = Counter()
        self.eval_rows: list[np.ndarray] = []


ImageCallback = Callable[["Frame", Sequence[ImageResult]], None]


def run_comparison(
    detectors: Sequence[Detector],
    frames: Iterable[Frame],
    settings: CompareSettings,
    labels: GroundTruth | None = None,
    on_image: ImageCallback | None = None,
    progress: Progress | None = None,
    total: int | None = None,
    stop: Stop | None = None,
) -> Comparison:
    """Run every detector on every frame and measure. `frames` are decoded images
    (`pipeline.image_frames`) or video frames (`video.video_frames`); `total` is their number when
    known, for the progress bar. `on_image` gets each frame and the per-model results (in `detectors`
    order), e.g. to draw side-by-side pictures or a side-by-side video as the run goes. `stop` is the
    run's stop flag (`signals.stop_on_signals`); without one, the comparison installs its own."""
    if len(detectors) < 2:
        raise BadOptionError("compare needs at least two models")
    labels_ = unique_labels([d.name for d in detectors])
    shared, notes = shared_class_names(detectors)
    shared_keys = frozenset(n.casefold() for n in shared)
    category_by_name: dict[str, int] = {}
    if labels is not None:
        category_by_name = {
            n.casefold(): c for c, n in labels.categories.items() if n.casefold() in shared_keys
        }
        if not category_by_name:
            raise LabelsError(f"the labels ({labels.path}) share no class names with the models")
        notes += list(labels.notes)
        unknown = [n for n in labels.categories.values() if n.casefold() not in shared_keys]
        if unknown:
            notes.append(
                f"{len(unknown)} label classes are not known to every model and are not scored: "
                + ", ".join(unknown[:8])
                + (" …" if len(unknown) > 8 else "")
            )
    tallies = [_ModelTally() for _ in detectors]
    pairs = [(i, j) for i in range(len(detectors)) for j in range(i + 1, len(detectors))]
    agreement = {p: AgreementTally(labels_[p[0]], labels_[p[1]]) for p in pairs}
    failed: list[tuple[str, str]] = []
    evaluated_ids: list[int] = []
    warmed = False
    interrupted = False
    seen = 0
    if progress:
        progress.start(total)
    # A first Ctrl-C finishes the frame in hand (so the numbers, detections and side-by-side video
    # cover the same frames), a second stops at once; the report covers what was done either way.
    try:
        with contextlib.nullcontext(stop) if stop is not None else stop_on_signals() as stop:
            for n, frame in enumerate(frames):
                if frame.image is not None and not warmed:
                    for d in detectors:
                        for _ in range(settings.warmup):
                            d.predict([frame.image])
                    warmed = True
                results = _run_one(detectors, tallies, frame, settings, n)
                errors = [r.error for r in results if r.error]
                if errors:
                    failed.append((frame.source, errors[0]))
                else:
                    for (i, j), tally in agreement.items():
                        tally.add(
                            match_detections(
                                results[i].detections, results[j].detections, settings.match_iou, shared_keys
                            )
                        )
                    if labels is not None and frame.source in labels.image_ids:
                        image_id = labels.image_ids[frame.source]
                        evaluated_ids.append(image_id)
                        for d, t in zip(detectors, tallies, strict=True):
                            with _conf(d, settings.eval_conf):
                                [(dets, _)] = d.predict([frame.image])
                            h, w = frame.image.shape[:2]
                            dets = clip_detections(dets, w, h)
                            t.eval_rows.append(detections_to_coco(dets, image_id, category_by_name))
                if on_image:
                    on_image(frame, results)
                seen += 1
                if progress:
                    progress.advance(next((r for r in results if not r.ok), results[0]))
                if stop.is_set():
                    break
            interrupted = interrupted or stop.is_set()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress:
            progress.stop()
    models = []
    for label, d, t in zip(labels_, detectors, tallies, strict=True):
        accuracy = None
        if labels is not None and evaluated_ids:
            import numpy as np

            accuracy = evaluate(
                labels,
                np.concatenate(t.eval_rows) if t.eval_rows else np.zeros((0, 7)),
                shared,
                evaluated_ids,
                conf=settings.conf,
                eval_conf=settings.eval_conf,
                max_det=d.options.max_det,
            )
        models.append(
            ModelResult(
                info=model_info(label, d),
                speed=SpeedStats.from_calls(t.speeds, t.wall_ms),
                images_ok=t.ok,
                images_failed=t.failed,
                detections=sum(t.per_class.values()),
                detections_per_class=dict(t.per_class.most_common()),
                accuracy=accuracy,
            )
        )
    if labels is not None and not evaluated_ids and not interrupted:
        raise LabelsError("labels do not match the images: no labelled image could be read")
    return Comparison(
        settings=settings,
        models=tuple(models),
        pairs=tuple(agreement[p].result() for p in pairs),
        shared_classes=shared,
        inputs=seen,
        failed=tuple(failed),
        labels=labels.path if labels else None,
        notes=tuple(notes),
        interrupted=interrupted,
    )


def _run_one(
    detectors: Sequence[Detector],
    tallies: Sequence[_ModelTally],
    frame: Frame,
    settings: CompareSettings,
    n: int,
) -> list[ImageResult]:
    """Every model on one frame, `runs` timed calls each, in an order that rotates with `n`."""
    results: list[ImageResult | None] = [None] * len(detectors)
    order = [(n + k) % len(detectors) for k in range(len(detectors))]
    for i in order:
        d, t = detectors[i], tallies[i]
        at = {"frame": frame.frame, "time_s": frame.time_s}  # set for video frames
        if frame.image is None:
            results[i] = ImageResult(frame.source, d.name, error=frame.error, **at)
            t.failed += 1
            continue
        h, w = frame.image.shape[:2]
        try:
            for run in range(settings.runs):
                start = time.perf_counter()
                [(dets, speed)] = d.predict([frame.image])
                t.wall_ms.append((time.perf_counter() - start) * 1000)
                t.speeds.append(speed)
                if run == 0:
                    boxes = clip_detections(dets, w, h)
                    results[i] = ImageResult(frame.source, d.name, w, h, speed, boxes, **at)
        except Exception as e:  # one failing input must not end the comparison; it is recorded
            results[i] = ImageResult(
                frame.source, d.name, w, h, error=f"inference failed: {type(e).__name__}: {e}", **at
            )
            t.failed += 1
            continue
        t.ok += 1
        t.per_class.update(x.class_name for x in results[i].detections)  # type: ignore[union-attr]
    return [r for r in results if r is not None]
