"""The run loop: read → detect → write, one stream of `Frame`s for images and video frames alike.

Reading runs ahead in worker threads (bounded look-ahead, order kept) so decoding and downloads overlap
inference; results go to the sinks as they come, so memory stays flat however many inputs there are.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol, TypeVar

from detect_cli.errors import InputError
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import ImageResult, RunSummary
from detect_cli.sources import DEFAULT_URL_TIMEOUT_S, ImageInput, read_image

if TYPE_CHECKING:
    import numpy as np

    from detect_cli.writers import Sink

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Frame:
    """One unit of work: a decoded image or video frame, or the error that stopped reading it."""

    source: str
    rel_path: PurePosixPath
    image: np.ndarray | None
    error: str | None = None
    frame: int | None = None
    time_s: float | None = None


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...
    def advance(self, result: ImageResult) -> None: ...
    def stop(self) -> None: ...


def prefetch(items: Iterable[T], fn: Callable[[T], R], depth: int = 4, workers: int = 2) -> Iterator[R]:
    """map(fn, items) with up to `depth` calls running ahead in threads; results come in input order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detect-read") as pool:
        window: deque[Future[R]] = deque()
        it = iter(items)
        try:
            for item in it:
                window.append(pool.submit(fn, item))
                if len(window) >= depth:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()


def read_frame(item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S) -> Frame:
    try:
        return Frame(item.source, item.rel_path, read_image(item, url_timeout))
    except InputError as e:
        return Frame(item.source, item.rel_path, None, error=str(e))


def image_frames(items: Sequence[ImageInput], url_timeout: float = DEFAULT_URL_TIMEOUT_S) -> Iterator[Frame]:
    return prefetch(items, lambda item: read_frame(item, url_timeout))


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def detect_batch(detector: Detector, batch: Sequence[Frame]) -> list[ImageResult]:
    """Results for one batch, in order; unreadable frames and a failing model call become error records."""
    readable = [f for f in batch if f.image is not None]
    outputs: dict[int, tuple] = {}
    failure: str | None = None
    if readable:
        try:
            for f, out in zip(readable, detector.predict([f.image for f in readable]), strict=True):
                outputs[id(f)] = out
        except Exception as e:  # one bad batch must not end the run; it is recorded against its inputs
            failure = f"inference failed: {type(e).__name__}: {e}"
    results = []
    ran = {"backend": detector.backend, "precision": detector.precision}
    for f in batch:
        h, w = f.image.shape[:2] if f.image is not None else (None, None)
        if id(f) in outputs:
            dets, speed = outputs[id(f)]
            results.append(
                ImageResult(f.source, detector.name, w, h, speed, dets, None, f.frame, f.time_s, **ran)
            )
        else:
            results.append(
                ImageResult(
                    f.source, detector.name, w, h, error=f.error or failure, frame=f.frame, time_s=f.time_s
                )
            )
    return results


@dataclass
class RunReport:
    """What a finished (or interrupted) run did, for the summary."""

    out: Path
    summary: RunSummary = field(default_factory=RunSummary)
    seconds: float = 0.0
    interrupted: bool = False


def run(
    frames: Iterable[Frame],
    detector: Detector,
    sinks: Sequence[Sink],
    out: Path,
    progress: Progress | None = None,
    total: int | None = None,
    batch: int = 1,
) -> RunReport:
    """Drive frames through the detector into the sinks.

    Ctrl-C stops the loop after the result in hand is written; the sinks are closed (files finalized)
    and the report comes back with `interrupted` set.
    """
    report = RunReport(out)
    start = time.perf_counter()
    if progress:
        progress.start(total)
    try:
        for chunk in _batches(frames, batch):
            for frame, result in zip(chunk, detect_batch(detector, chunk), strict=True):
                for sink in sinks:
                    sink.write(result, frame.rel_path, frame.image)
                report.summary.add(result)
                if progress:
                    progress.advance(result)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.seconds = time.perf_counter() - start
        if progress:
            progress.stop()
        from detect_cli.writers import close_all

        close_all(sinks)
    return report


@dataclass(frozen=True)
class ImageJob:
    """Everything `detect image` / `detect yolo image` needs, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    options: PredictOptions
    out: Path | None = None  # None: a new folder under detect-runs/ named after the command
    run_name: str = "image"
    exist_ok: bool = False
    formats: tuple[str, ...] = ("jsonl",)
    save_images: bool = True
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    batch: int = 1
    classes: str | None = None
    iou_given: bool = False
    backend: str = "torch"  # torch, onnx, openvino or auto (see detect_cli.backends)
    precision: str | None = None  # None: the backend's default


def option_warnings(detector: Detector, iou_given: bool) -> list[str]:
    """Things the user set that will not do what they may expect with this model."""
    notes = []
    if detector.family == "rtdetr" and iou_given and not detector.options.nms:
        notes.append(
            "RT-DETR is NMS-free, so --iou has no effect; add --nms to apply class-wise NMS at --iou"
        )
    if detector.ref.untrained:
        notes.append(
            f"{detector.ref.location} is a model config: its weights are random (untrained), "
            "so its detections are meaningless"
        )
    return notes


def load_detector(
    ref: ModelRef,
    options: PredictOptions,
    classes: str | None,
    backend: str = "torch",
    precision: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Detector:
    """Load the model on its backend (exporting it once when that is ONNX or OpenVINO), then resolve
    `--classes` against its class names."""
    from dataclasses import replace

    from detect_cli import backends
    from detect_cli.models import resolve_classes

    plan = backends.LoadPlan(backend, precision)  # type: ignore[arg-type]
    detector = backends.load(ref, options, plan, warn or (lambda _: None))
    if classes:
        detector.options = replace(options, classes=resolve_classes(classes, detector.names))
    return detector


def run_images(
    job: ImageJob,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    detector: Detector | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[RunReport, Detector]:
    """Discover inputs, load the model, and run; `echo` receives each results.jsonl line as written."""
    from detect_cli.sources import discover_images
    from detect_cli.writers import open_sinks, prepare_out

    items = discover_images(job.sources, job.recursive)  # before loading: bad sources fail fast
    detector = detector or load_detector(
        job.model, job.options, job.classes, job.backend, job.precision, warn
    )
    for note in option_warnings(detector, job.iou_given):
        if warn:
            warn(note)
    out = prepare_out(job.out, job.run_name, job.exist_ok)  # only once there is something to write
    sinks = open_sinks(out, job.formats, detector.names, job.save_images, echo)
    frames = image_frames(items, job.url_timeout)
    return run(frames, detector, sinks, out, progress, total=len(items), batch=job.batch), detector
