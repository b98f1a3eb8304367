"""The run loop: read → detect → write, one stream of `Frame`s for images and video frames alike.

Reading runs ahead in worker threads (bounded look-ahead, order kept) so decoding and downloads overlap
inference; results go to the sinks as they come, so memory stays flat however many inputs there are.
`run_images` is a whole image batch: discovery, resume, the model, an executor (executors.py: local or
Ray), and the tables built from results.jsonl at the end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol, TypeVar

from detect_cli.errors import BadOptionError, InputError
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import ImageResult, RunSummary
from detect_cli.signals import Interrupted, stop_on_signals
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    FileStamp,
    ImageInput,
    decode_image,
    fetch_url,
    input_path,
    read_file,
)
from detect_cli.threads import prefetch

if TYPE_CHECKING:
    import numpy as np

    from detect_cli.sources import VideoInput
    from detect_cli.writers import Sink

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Frame:
    """One unit of work: a decoded image or video frame, or the error that stopped reading it.

    `path` and `stamp` identify a file input for resume (None for URLs and video frames)."""

    source: str
    rel_path: PurePosixPath
    image: np.ndarray | None
    error: str | None = None
    frame: int | None = None
    time_s: float | None = None
    path: str | None = None
    stamp: FileStamp | None = None


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...
    def advance(self, result: ImageResult) -> None: ...
    def stop(self) -> None: ...


def read_frame(
    item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Frame:
    """Read and decode one input; a failure (vanished file, bad bytes, HTTP error) becomes its `error`.
    The stamp is that of the bytes read, so a record always describes the file it was made from."""
    path, stamp = input_path(item), None
    try:
        if item.error:
            raise InputError(item.error)
        if item.url:
            data = fetch_url(item.url, url_timeout)
        else:
            assert item.path is not None
            data, stamp = read_file(item.path)
        return Frame(item.source, item.rel_path, decode_image(data, max_pixels), path=path, stamp=stamp)
    except InputError as e:
        return Frame(item.source, item.rel_path, None, error=str(e), path=path, stamp=stamp)
    except MemoryError:  # a picture within the pixel budget that still does not fit: this input's failure
        return Frame(
            item.source, item.rel_path, None, error="out of memory decoding it", path=path, stamp=stamp
        )


def image_frames(
    items: Sequence[ImageInput],
    url_timeout: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stop: threading.Event | None = None,
) -> Iterator[Frame]:
    """The inputs read and decoded a few ahead, in threads; ends early when `stop` is set."""
    return prefetch(items, lambda item: read_frame(item, url_timeout, max_pixels), stop=stop)


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
        ident = {
            "frame": f.frame,
            "time_s": f.time_s,
            "path": f.path,
            "size": f.stamp.size if f.stamp else None,
            "mtime_ns": f.stamp.mtime_ns if f.stamp else None,
        }
        if id(f) in outputs:
            dets, speed = outputs[id(f)]
            results.append(ImageResult(f.source, detector.name, w, h, speed, dets, None, **ident, **ran))
        else:
            results.append(ImageResult(f.source, detector.name, w, h, error=f.error or failure, **ident))
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
    skipped: int = 0  # already recorded by an earlier run (--resume)
    skipped_failed: int = 0  # of those, recorded as failed (--retry-failed redoes them)
    signum: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM), when one did


def run(
    frames: Iterable[Frame],
    detector: Detector,
    sinks: Sequence[Sink],
    out: Path,
    progress: Progress | None = None,
    total: int | None = None,
    batch: int = 1,
    stop: threading.Event | None = None,
) -> RunReport:
    """Drive frames through the detector into the sinks, each result to every sink in order.

    When `stop` is set the loop ends after the batch in hand is written (the frames stop coming, even
    when a reader is stuck); a KeyboardInterrupt ends it after the result in hand. Either way the sinks
    are closed (files finalized) and the report comes back with `interrupted` set. Inputs whose outputs
    could not be written are counted as the failures their records say they are.
    """
    report = RunReport(out)
    start = time.perf_counter()
    if progress:
        progress.start(total)
    frames = iter(frames)
    try:
        for chunk in _batches(frames, batch):
            for frame, result in zip(chunk, detect_batch(detector, chunk), strict=True):
                for sink in sinks:
                    sink.write(result, frame.rel_path, frame.image)
                report.summary.add(result)
                if report.first_result_s is None:
                    report.first_result_s = time.perf_counter() - start
                if progress:
                    progress.advance(result)
            if stop is not None and stop.is_set():
                break
    except KeyboardInterrupt as e:
        report.interrupted = True
        report.signum = e.signum if isinstance(e, Interrupted) else None
    finally:
        close = getattr(frames, "close", None)
        if close:  # stop reading ahead now, not when the generator is collected
            close()
        report.seconds = time.perf_counter() - start
        if progress:
            progress.stop()
        from detect_cli.writers import close_all

        close_all(sinks)
    if stop is not None and stop.is_set():
        report.interrupted = True
        report.signum = report.signum or getattr(stop, "signum", None)
    for sink in sinks:
        for inferred, recorded in sink.failures():
            report.summary.retract(inferred)
            report.summary.add(recorded)
    return report


@dataclass(frozen=True)
class Job:
    """What every inference command shares, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    options: PredictOptions
    out: Path | None = None  # None: a new folder under detect-runs/ named after the command
    run_name: str = "image"
    exist_ok: bool = False
    formats: tuple[str, ...] = ("jsonl",)
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger pictures (and video frames) are refused unread
    batch: int = 1
    classes: str | None = None
    iou_given: bool = False
    backend: str = "torch"  # torch, onnx, openvino or auto (see detect_cli.backends)
    precision: str | None = None  # None: the backend's default


@dataclass(frozen=True)
class ImageJob(Job):
    """Everything `detect image` / `detect yolo image` needs."""

    save_images: bool = True
    resume: bool = False  # finish the run in `out`: skip inputs it recorded (unless changed since)
    retry_failed: bool = False  # with resume: also redo inputs recorded as failed
    executor: str = "local"  # "local" or "ray"
    ray_address: str | None = None  # None: $RAY_ADDRESS, else start a local Ray
    ray_workers: int | None = None  # None: one per GPU (CUDA) or per CPU of the cluster

    @property
    def resuming(self) -> bool:
        return self.resume or self.retry_failed


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
    from detect_cli.models import import_ultralytics, resolve_classes

    import_ultralytics()  # first, so the offline settings and the stderr logger hold for all that follows
    plan = backends.LoadPlan(backend, precision)  # type: ignore[arg-type]
    detector = backends.load(ref, options, plan, warn or (lambda _: None))
    if classes:
        detector.options = replace(options, classes=resolve_classes(classes, detector.names))
    return detector


INTERRUPT_NOTE = "stopping: finishing the images in flight (Ctrl-C again to stop at once)"
VIDEO_INTERRUPT_NOTE = "stopping: finishing the frame in hand and the video (Ctrl-C again to stop at once)"


def _image_outputs(out: Path, job: ImageJob, items: Sequence[ImageInput]) -> Iterator[Path]:
    from detect_cli.writers import RESULTS_JSONL, TABLES, output_paths

    yield out / RESULTS_JSONL
    yield from (out / name for name in TABLES.values())
    for item in items:
        yield from output_paths(out, item.rel_path, job.formats, job.save_images)


def run_images(
    job: ImageJob,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    detector: Detector | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[RunReport, Detector]:
    """Discover inputs, check the plan, plan a resume, load the model, run on the chosen executor,
    build the tables.

    `echo` receives each results.jsonl line as written. A first Ctrl-C (or SIGTERM) finishes the images
    in flight and returns a report with `interrupted` set.
    """
    from detect_cli import resume
    from detect_cli.executors import execute, require_executor
    from detect_cli.rundir import check_plan, planned_folder, run_folder
    from detect_cli.sources import discover_images
    from detect_cli.writers import RESULTS_JSONL, write_tables

    require_executor(job.executor)  # a missing ray package is said before anything runs
    if job.resuming and job.out is None:
        raise BadOptionError("--resume needs --out: the folder of the run to finish")
    # Before loading: bad sources, and outputs that would land on inputs, fail fast.
    items = discover_images(job.sources, job.recursive, warn, exclude=[job.out] if job.out else ())
    planned = planned_folder(job.out, job.run_name, job.exist_ok or job.resuming)
    if planned is not None:
        check_plan(planned, job.sources, items, _image_outputs(planned, job, items))
    with contextlib.ExitStack() as held:
        todo = resume.ResumePlan(items)
        if job.resuming:  # locked first: the record must not change between reading and finishing it
            out = held.enter_context(run_folder(job.out, job.run_name, exist_ok=True))
            index = resume.DoneIndex.load(out / RESULTS_JSONL)
            if other := index.models - {job.model.name}:
                raise BadOptionError(
                    f"{job.out} holds results of {', '.join(sorted(other))}, not {job.model.name}: "
                    "resume it with the same --model, or choose another --out"
                )
            todo = resume.plan(items, index, job.retry_failed)
            if index.bad_lines and warn:
                record = out / RESULTS_JSONL
                warn(
                    f"{record}: {len(index.bad_lines)} line(s) are not records (first: line "
                    f"{index.bad_lines[0][0]}); they are moved to {resume.rejected_path(record)}"
                )
        detector = detector or load_detector(
            job.model, job.options, job.classes, job.backend, job.precision, warn
        )
        for note in option_warnings(detector, job.iou_given):
            if warn:
                warn(note)
        if not job.resuming:  # only once there is something to write
            out = held.enter_context(run_folder(job.out, job.run_name, job.exist_ok))
        else:
            resume.remove_partials(out)
        with stop_on_signals(lambda: warn(INTERRUPT_NOTE) if warn else None) as stop:
            report = execute(job, todo.todo, detector, out, progress, echo, stop)
            report.skipped, report.skipped_failed = todo.skipped, todo.skipped_failed
            if todo.needs_compaction:
                resume.compact(out / RESULTS_JSONL)
            write_tables(out, job.formats, detector.names)
    return report, detector


@dataclass(frozen=True)
class VideoJob(Job):
    """Everything `detect video` / `detect yolo video` needs."""

    run_name: str = "video"
    save_video: bool = True
    save_frames: bool = False
    vid_stride: int = 1
    max_frames: int | None = None
    reconnects: int = 3


def _video_outputs(
    out: Path, job: VideoJob, items: Sequence[VideoInput], suffix: str | None
) -> Iterator[Path]:
    from detect_cli.writers import FRAMES_JSONL, TABLES

    yield out / FRAMES_JSONL
    yield from (out / name for name in TABLES.values())
    for item in items:
        if suffix:
            yield out / item.rel_path.with_name(item.rel_path.name + suffix)
        if job.save_frames:
            yield out / item.rel_path


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
    from detect_cli.rundir import check_plan, planned_folder, run_folder
    from detect_cli.sources import discover_videos
    from detect_cli.threads import ThreadedSink
    from detect_cli.writers import (
        FRAMES_JSONL,
        AnnotatedImageWriter,
        AnnotatedVideoWriter,
        open_sinks,
        write_tables,
    )

    items = discover_videos(job.sources, job.recursive, exclude=[job.out] if job.out else ())
    codec = video.pick_codec() if job.save_video else None
    planned = planned_folder(job.out, job.run_name, job.exist_ok)
    if planned is not None:
        outputs = _video_outputs(planned, job, items, codec.suffix if codec else None)
        check_plan(planned, job.sources, items, outputs, record=FRAMES_JSONL)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="detect-video-") as workdir:  # downloaded URLs live here
        # Before loading: a source that cannot be read fails fast.
        videos = video.open_videos(items, Path(workdir), job.url_timeout, job.max_pixels)
        detector = detector or load_detector(
            job.model, job.options, job.classes, job.backend, job.precision, warn
        )
        for note in option_warnings(detector, job.iou_given):
            if warn:
                warn(note)
        with run_folder(job.out, job.run_name, job.exist_ok, record=FRAMES_JSONL) as out:
            # Frames' own files, then their record, in one writer thread; the video in another, so
            # drawing and encoding overlap inference.
            group = open_sinks(out, job.formats, detector.names, False, echo, record=FRAMES_JSONL)
            if job.save_frames:
                group.outputs.append(AnnotatedImageWriter(out))
            sinks: list[Sink] = [ThreadedSink(group)]
            opened = [v for v in videos if isinstance(v, video.OpenedVideo)]
            video_writer = None
            if codec:
                fps = {v.item.source: video.output_fps(v.info, job.vid_stride) for v in opened}
                video_writer = AnnotatedVideoWriter(out, fps, codec)
                sinks.insert(0, ThreadedSink(video_writer))
            counts = [video.frames_to_process(v.info, job.vid_stride, job.max_frames) for v in opened]
            total = None if None in counts else sum(c or 0 for c in counts) + len(videos) - len(opened)
            # A first Ctrl-C (or SIGTERM) finishes the frame in hand, then the video is finalized.
            with stop_on_signals(lambda: warn(VIDEO_INTERRUPT_NOTE) if warn else None) as stop:
                frames = video.video_frames(
                    videos,
                    job.vid_stride,
                    job.max_frames,
                    job.reconnects,
                    job.url_timeout,
                    notes.append,
                    stop=stop,
                )
                report = run(frames, detector, sinks, out, progress, total=total, batch=job.batch, stop=stop)
                write_tables(out, job.formats, detector.names, record=FRAMES_JSONL)
    report.notes.extend(notes)
    report.codec = str(codec) if codec else None
    if video_writer:
        report.outputs.extend(video_writer.written)
        for source, problem in video_writer.problems:
            report.summary.failed += 1
            report.summary.failures.append((source, problem))
    return report, detector
