"""What `detect compare` measured, as frozen dataclasses: speed, agreement and accuracy per model and pair,
the settings, and the whole `Comparison` (`to_dict` is report.json). No logic beyond summing up. What was
compared (`ModelInfo`) lives in model_facts.py and the accuracy figures (`Accuracy`) in accuracy.py, beside
what makes them, so that the analysis they feed never imports this module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.compare.accuracy import EVAL_CONF, Accuracy
from detect_cli.compare.model_facts import ModelInfo
from detect_cli.geometry import MATCH_IOU
from detect_cli.results import Speed
from detect_cli.tracks import Stability

if TYPE_CHECKING:
    from detect_cli.compare.analysis import Analysis

DETECTIONS = "detections"  # the run folder's detections/<label>.jsonl: every model's measurements
# A 95th percentile from fewer calls is one of the slowest two or three calls, not a percentile: below this
# many timed calls p95 is not reported, and compare raises --runs to reach it (run.timed_runs).
P95_MIN_CALLS = 20


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
            latency_p95_ms=float(np.percentile(wall, 95)) if len(wall) >= P95_MIN_CALLS else float("nan"),
            images_per_s=1000.0 / mean if mean > 0 else float("nan"),
        )


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
class Memory:
    """Peak memory of one model, measured alone in a child process (so another model's memory does not
    hide it) on the run's first `images` inputs. `method` says which figure `peak_mb` is:
    "rss": peak resident memory (VmHWM) minus the child's resident memory right after its imports
    (torch, ultralytics): the model's weights, activations and buffers;
    "cuda": `torch.cuda.max_memory_allocated` (weights and activations on the GPU), `rss_mb` beside it."""

    peak_mb: float
    method: str
    images: int
    baseline_mb: float | None = None
    rss_mb: float | None = None


@dataclass(frozen=True, slots=True)
class ModelResult:
    info: ModelInfo
    speed: SpeedStats
    images_ok: int
    images_failed: int
    detections: int
    detections_per_class: dict[str, int]
    accuracy: Accuracy | None = None
    memory: Memory | None = None


@dataclass(frozen=True, slots=True)
class CompareSettings:
    """The same for every model."""

    imgsz: int = 640
    conf: float = 0.25
    warmup: int = 2
    runs: int = 1
    eval_conf: float = EVAL_CONF
    match_iou: float = MATCH_IOU
    runs_asked: int | None = None  # set when compare raised --runs to reach P95_MIN_CALLS timed calls


@dataclass(frozen=True, slots=True)
class VideoRun:
    """How video sources were compared: each processed frame is one input. `side_by_side` names the
    side-by-side videos written (relative to the report folder), `codec` the codec they use."""

    videos: int
    vid_stride: int = 1
    max_frames: int | None = None
    side_by_side: tuple[str, ...] = ()
    codec: str | None = None
    playable: bool = False  # H.264 in .mp4: browsers play it, so report.html embeds it


@dataclass(frozen=True, slots=True)
class MotMetrics:
    """One model's tracks scored against MOTChallenge ground truth by TrackEval: HOTA (with its
    detection and association parts, each the mean over IoU thresholds 0.05-0.95), MOTA, MOTP and the
    identity switches (CLEAR, IoU 0.5), IDF1 (Identity, IoU 0.5)."""

    hota: float
    deta: float
    assa: float
    mota: float
    motp: float
    idf1: float
    id_switches: int
    gt_boxes: int
    gt_ids: int
    frames: int


@dataclass(frozen=True, slots=True)
class ModelTracking:
    """One model's tracks: label-free stability (tracks.Stability), the scores against ground truth
    when it was given, and its MOT files (relative to the report folder)."""

    label: str
    stability: Stability
    mot: MotMetrics | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackingRun:
    """`--track`: the tracker and its settings (as ultralytics names them), the same for every model."""

    tracker: str
    settings: dict[str, Any]
    settings_from: str
    models: tuple[ModelTracking, ...]
    ground_truth: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InputAgreement:
    """How much the models agreed on one input: the mean over pairs of 2·matched / (boxes of A + boxes
    of B); None when no model found a box. `rel_path` is where its side-by-side picture goes; `frame`
    and `time_s` place a video frame in its video."""

    source: str
    rel_path: str
    agreement: float | None
    boxes: int
    frame: int | None = None
    time_s: float | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """Where and how the comparison ran, so that a report can be set beside another one."""

    cpu: str
    cpu_count: int | None
    torch_threads: int | None
    gpu: str | None
    gpu_driver: str | None
    cuda: str | None
    os: str
    python: str
    versions: dict[str, str]  # detect, torch, ultralytics, and openvino / onnxruntime when installed
    date: str
    command: str


@dataclass(frozen=True, slots=True)
class Picture:
    """A side-by-side picture kept for report.html (scaled down, JPEG), with its caption."""

    source: str
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class VariantFidelity:
    """One backend and precision of a model against the same model on PyTorch fp32 (the reference),
    on the same inputs (compare/fidelity.py). Box agreement: 2·matched / (boxes of both), matched =
    same class at IoU ≥ 0.5, one to one, with its bootstrap interval over the pictures; class agreement:
    matched boxes / (matched boxes + boxes left over that pair at IoU ≥ 0.5 under another class); score drift:
    |score - reference score| over the matched boxes; speed-up: images/s over the reference's; the mAP
    change (fractions: -0.004 is 0.4 points) when labels were given. `safe` is None when neither found a
    box (nothing to judge)."""

    label: str
    backend: str
    precision: str
    images: int
    reference_boxes: int
    boxes: int
    box_agreement: float | None
    box_agreement_low: float | None
    box_agreement_high: float | None
    mean_iou: float | None
    class_agreement: float | None
    score_drift_mean: float | None
    score_drift_max: float | None
    images_per_s: float | None
    speedup: float | None
    peak_mb: float | None
    map50_95: float | None
    map50_95_change: float | None
    safe: bool | None
    why_unsafe: str | None = None


@dataclass(frozen=True, slots=True)
class Fidelity:
    """`detect compare --backends`: each variant against the reference, and the stated thresholds below
    which a variant is marked unsafe."""

    reference: str
    min_agreement: float
    min_mean_iou: float
    variants: tuple[VariantFidelity, ...]


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
    environment: Environment | None = None
    per_input: tuple[InputAgreement, ...] = ()
    tracking: TrackingRun | None = None  # --track on a video
    analysis: Analysis | None = None  # intervals, operating points, slices, error types (analysis.py)
    fidelity: Fidelity | None = None  # `--backends`: each backend/precision against PyTorch fp32
    cut_short: tuple[str, ...] = ()  # what a stop after the last input left out (memory, figures, plots)

    def interruption(self) -> str | None:
        """What a stop changed, in one sentence for the reports (None: the run was not stopped)."""
        if not self.interrupted:
            return None
        if self.cut_short:
            return (
                f"stopped after every {self.unit} was compared: left out "
                + "; ".join(self.cut_short)
                + " (every figure shown is complete)"
            )
        return f"these numbers cover the {self.unit}s done before it was stopped"

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
        for row, m in zip(d["models"], self.models, strict=True):
            row["info"]["ran"] = m.info.ran
        d["analysis"] = _rounded(self.analysis.to_dict()) if self.analysis else None
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
