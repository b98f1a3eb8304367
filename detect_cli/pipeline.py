"""The run loop: read → detect → write, one stream of `Frame`s for images and video frames alike.

Reading runs ahead in worker threads (bounded look-ahead, order kept) so decoding and downloads overlap
inference; results go to the sinks as they come, so memory stays flat however many inputs there are.
"""

from __future__ import annotations

import contextlib
import signal
import threading
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
    for f in batch:
        h, w = f.image.shape[:2] if f.image is not None else (None, None)
        if id(f) in outputs:
            dets, speed = outputs[id(f)]
            results.append(ImageResult(f.source, detector.name, w, h, speed, dets, None, f.frame, f.time_s))
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
    first_result_s: float | None = None  # the first result includes the model's one-off setup
    notes: list[str] = field(default_factory=list)  # things the user should hear that are not failures
    outputs: list[Path] = field(default_factory=list)  # files worth naming in the summary (videos)
    codec: str | None = None  # the video codec written with, when videos were written


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until it ends, so one result reaches every sink
    or none: a video never holds a frame that frames.jsonl lacks, or the other way round."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


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
                with _sigint_deferred():
                    for sink in sinks:
                        sink.write(result, frame.rel_path, frame.image)
                    report.summary.add(result)
                if report.first_result_s is None:
                    report.first_result_s = time.perf_counter() - start
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


def load_detector(ref: ModelRef, options: PredictOptions, classes: str | None) -> Detector:
    """Load the model, then resolve `--classes` against its class names."""
    from dataclasses import replace

    from detect_cli.models import load, resolve_classes

    detector = load(ref, options)
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
    detector = detector or load_detector(job.model, job.options, job.classes)
    for note in option_warnings(detector, job.iou_given):
        if warn:
            warn(note)
    out = prepare_out(job.out, job.run_name, job.exist_ok)  # only once there is something to write
    sinks = open_sinks(out, job.formats, detector.names, job.save_images, echo)
    frames = image_frames(items, job.url_timeout)
    return run(frames, detector, sinks, out, progress, total=len(items), batch=job.batch), detector


@dataclass(frozen=True)
class VideoJob:
    """Everything `detect video` / `detect yolo video` needs, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    options: PredictOptions
    out: Path | None = None
    run_name: str = "video"
    exist_ok: bool = False
    formats: tuple[str, ...] = ("jsonl",)
    save_video: bool = True
    save_frames: bool = False
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    batch: int = 1
    classes: str | None = None
    iou_given: bool = False
    vid_stride: int = 1
    max_frames: int | None = None
    reconnects: int = 3


def run_video(
    job: VideoJob,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    detector: Detector | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[RunReport, Detector]:
    """Open the videos, load the model, and run their frames through `run`; frames.jsonl gets one
    line per processed frame (`echo` receives each as written)."""
    import tempfile

    from detect_cli import video
    from detect_cli.sources import discover_videos
    from detect_cli.threads import ThreadedSink
    from detect_cli.writers import AnnotatedImageWriter, AnnotatedVideoWriter, open_sinks, prepare_out

    items = discover_videos(job.sources, job.recursive)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="detect-video-") as workdir:  # downloaded URLs live here
        videos = video.open_videos(items, Path(workdir), job.url_timeout)  # before loading: fail fast
        detector = detector or load_detector(job.model, job.options, job.classes)
        for note in option_warnings(detector, job.iou_given):
            if warn:
                warn(note)
        codec = video.pick_codec() if job.save_video else None
        out = prepare_out(job.out, job.run_name, job.exist_ok, record="frames.jsonl")
        sinks = open_sinks(out, job.formats, detector.names, False, echo, record="frames.jsonl")
        opened = [v for v in videos if isinstance(v, video.OpenedVideo)]
        video_writer = None
        if codec:
            fps = {v.item.source: v.info.fps / job.vid_stride for v in opened}
            video_writer = AnnotatedVideoWriter(out, fps, codec)
            sinks.append(ThreadedSink(video_writer))  # drawing and encoding overlap inference
        if job.save_frames:
            sinks.append(ThreadedSink(AnnotatedImageWriter(out)))
        counts = [video.frames_to_process(v.info, job.vid_stride, job.max_frames) for v in opened]
        total = None if None in counts else sum(c or 0 for c in counts) + len(videos) - len(opened)
        frames = video.video_frames(
            videos, job.vid_stride, job.max_frames, job.reconnects, job.url_timeout, notes.append
        )
        with contextlib.closing(frames):  # stops the decoder thread however the run ends
            report = run(frames, detector, sinks, out, progress, total=total, batch=job.batch)
    report.notes.extend(notes)
    report.codec = str(codec) if codec else None
    if video_writer:
        report.outputs.extend(video_writer.written)
    return report, detector
