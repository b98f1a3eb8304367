"""`detect compare` end to end: SOURCE arguments → images or videos → one stream of frames → the models
(`compare.run_comparison`) → detections, side-by-side pictures or videos, and the report.

A run compares images or videos, never both: what one input is (an image, or a video frame) decides
what the numbers mean, and labels apply to images only. Videos are opened before any model loads (a
bad source fails fast), decoded once in a background thread (`video.video_frames`), and every model
gets the same decoded frame.
"""

from __future__ import annotations

import contextlib
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from detect_cli.compare import CompareSettings, Comparison, VideoRun, run_comparison, unique_labels
from detect_cli.errors import BadOptionError, NoInputsError
from detect_cli.signals import Stop, stop_on_signals
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    URL_SCHEMES,
    VIDEO_SUFFIXES,
    ImageInput,
    VideoInput,
    discover_images,
    discover_videos,
)

if TYPE_CHECKING:
    from detect_cli.models import ModelRef, PredictOptions
    from detect_cli.pipeline import Frame, Progress
    from detect_cli.report import Picture

SourceKind = Literal["images", "videos"]


@dataclass(frozen=True)
class CompareJob:
    """Everything `detect compare` needs, as plain values."""

    sources: tuple[str, ...]
    models: tuple[ModelRef, ...]
    options: PredictOptions
    settings: CompareSettings
    data: Path | None = None  # labels: a YOLO data.yaml ...
    coco: Path | None = None  # ... or a COCO annotations json (images only)
    out: Path | None = None  # None: a new detect-runs/compare[-N]
    exist_ok: bool = False
    save: bool = True  # side-by-side pictures, or for videos the side-by-side video
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    vid_stride: int = 1
    max_frames: int | None = None
    reconnects: int = 3
    backend: str = "torch"  # the same backend for every model (see detect_cli.backends)
    precision: str | None = None


@dataclass
class CompareRun:
    """A finished (or interrupted) comparison and where its report went."""

    comparison: Comparison
    out: Path
    pictures: list[Picture]
    signum: int | None = None  # the signal that stopped the run, when one did


# --- what the sources are -------------------------------------------------------------------------


def _url_suffix(url: str) -> str:
    return PurePosixPath(urllib.parse.urlsplit(url).path).suffix.lower()


def _is_video(item: VideoInput) -> bool:
    """A webcam, a stream (rtsp, rtmp), a URL to a video file, or a file with a video suffix. An http(s)
    URL without a video suffix is taken for an image, as `detect image` takes it."""
    if item.webcam is not None:
        return True
    if item.url:
        return item.url_is_file or urllib.parse.urlsplit(item.url).scheme.lower() not in URL_SCHEMES
    return item.path is not None and item.path.suffix.lower() in VIDEO_SUFFIXES


def _is_image(item: ImageInput) -> bool:
    if item.url:
        return _url_suffix(item.url) not in VIDEO_SUFFIXES
    return item.path is not None and item.path.suffix.lower() not in VIDEO_SUFFIXES


def source_kind(sources: Sequence[str], recursive: bool = True) -> SourceKind:
    """Whether the sources name images or videos. Both at once is refused (BadOptionError, exit 2):
    compare them in two runs. Sources that name nothing usable count as images, so the image run
    reports them as it always has."""

    def found(discover: Callable[[Sequence[str], bool], list]) -> list:  # type: ignore[type-arg]
        try:
            return [item for item in discover(sources, recursive) if item.error is None]
        except NoInputsError:
            return []

    videos = [v for v in found(discover_videos) if _is_video(v)]
    images = [i for i in found(discover_images) if _is_image(i)]
    if videos and images:
        raise BadOptionError(
            f"compare takes images or videos, not both in one run ({videos[0].source} is a video, "
            f"{images[0].source} an image): compare them in two runs"
        )
    return "videos" if videos else "images"


# --- the inputs as frames -------------------------------------------------------------------------


@dataclass
class _Inputs:
    frames: Iterator[Frame]
    total: int | None  # frames to compare, when known
    images: list[ImageInput] = field(default_factory=list)  # for matching labels
    fps: dict[str, float] = field(default_factory=dict)  # per video source: its fps / stride
    videos: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. a live stream that stopped
    video_items: list[VideoInput] = field(default_factory=list)


def _exclude(job: CompareJob) -> tuple[Path, ...]:
    return (job.out,) if job.out else ()


@contextlib.contextmanager
def _image_inputs(job: CompareJob, stop: Stop) -> Iterator[_Inputs]:
    from detect_cli.pipeline import image_frames

    items = discover_images(job.sources, job.recursive, exclude=_exclude(job))
    frames = image_frames(items, job.url_timeout, job.max_pixels, stop)
    with contextlib.closing(frames):
        yield _Inputs(frames, len(items), images=items)


@contextlib.contextmanager
def _video_inputs(job: CompareJob, stop: Stop) -> Iterator[_Inputs]:
    """The videos opened (URLs downloaded into a temporary folder that lives as long as the run) and
    their frames decoded ahead in a thread, which closing the stream stops however the run ends."""
    from detect_cli import video

    items = discover_videos(job.sources, job.recursive, exclude=_exclude(job))
    with tempfile.TemporaryDirectory(prefix="detect-compare-") as workdir:
        videos = video.open_videos(items, Path(workdir), job.url_timeout, job.max_pixels)
        opened = [v for v in videos if isinstance(v, video.OpenedVideo)]
        counts = [video.frames_to_process(v.info, job.vid_stride, job.max_frames) for v in opened]
        total = None if None in counts else sum(c or 0 for c in counts) + len(videos) - len(opened)
        notes: list[str] = []
        frames = video.video_frames(
            videos, job.vid_stride, job.max_frames, job.reconnects, job.url_timeout, notes.append, stop=stop
        )
        with contextlib.closing(frames):
            yield _Inputs(
                frames,
                total,
                fps={v.item.source: video.output_fps(v.info, job.vid_stride) for v in opened},
                videos=len(videos),
                notes=notes,
                video_items=items,
            )


def spread(total: int, k: int) -> list[int]:
    """k indexes spread evenly over range(total), first and last included (all of them when total <= k)."""
    if total <= k:
        return list(range(total))
    if k == 1:
        return [0]
    return [round(i * (total - 1) / (k - 1)) for i in range(k)]


# --- the run --------------------------------------------------------------------------------------

INTERRUPT_NOTE = "stopping: finishing the frame in hand, then the report (Ctrl-C again to stop at once)"


def _outputs(out: Path, inputs: _Inputs, video_suffix: str | None) -> Iterator[Path]:
    """The files a comparison writes (for the check that none of them is an input)."""
    from detect_cli.report import REPORT_FILES

    yield from (out / name for name in REPORT_FILES)
    for item in inputs.images:
        yield out / "side-by-side" / item.rel_path.with_suffix(".jpg")
    for video in inputs.video_items:
        if video_suffix:
            yield out / "side-by-side" / video.rel_path.with_name(video.rel_path.name + video_suffix)


def run_compare(
    job: CompareJob,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> CompareRun:
    """Check the sources, load the models, compare, and write the report into the run folder."""
    from detect_cli.labels import load_labels
    from detect_cli.pipeline import load_detector, option_warnings
    from detect_cli.report import HTML_PICTURES, REPORT_RECORD, CompareOutputs, write_report
    from detect_cli.rundir import check_plan, planned_folder, run_folder

    if len(job.models) < 2:
        raise BadOptionError("compare needs at least two models")
    labelled = job.data is not None or job.coco is not None
    kind = source_kind(job.sources, job.recursive)
    if kind == "videos" and labelled:
        option = "--data" if job.data is not None else "--coco"
        raise BadOptionError(
            f"{option} gives labels for images; a video source has none, so leave it out "
            "(speed and agreement are still measured)"
        )
    if kind == "images" and (job.vid_stride != 1 or job.max_frames is not None) and warn:
        warn("--vid-stride and --max-frames apply to video sources; they are ignored for images")
    stop = Stop()  # the signal handlers go up once the models are loaded; reading ahead watches it
    with (_video_inputs if kind == "videos" else _image_inputs)(job, stop) as inputs:
        labels = load_labels(inputs.images, job.data, job.coco) if labelled else None
        detectors = [
            load_detector(ref, job.options, None, job.backend, job.precision, warn) for ref in job.models
        ]
        warned: set[str] = set()
        for d in detectors:
            for note in option_warnings(d, iou_given=False):
                if note not in warned and warn:
                    warn(note)
                warned.add(note)
        codec = None
        if kind == "videos" and job.save:
            from detect_cli.video import pick_codec

            codec = pick_codec()
        planned = planned_folder(job.out, "compare", job.exist_ok)
        if planned is not None:
            paths = _outputs(planned, inputs, codec.suffix if codec else None)
            check_plan(
                planned, job.sources, [*inputs.images, *inputs.video_items], paths, record=REPORT_RECORD
            )
        with run_folder(job.out, "compare", job.exist_ok, record=REPORT_RECORD) as out:
            pictures_at = None  # report.html shows a few pictures: over a video, spread, not its first frames
            if kind == "videos" and inputs.total:
                pictures_at = spread(inputs.total, HTML_PICTURES)
            outputs = CompareOutputs(
                out,
                unique_labels([d.name for d in detectors]),
                save=job.save,
                picture_indexes=pictures_at,
                video_fps=inputs.fps,
                codec=codec,
            )
            with stop_on_signals(lambda: warn(INTERRUPT_NOTE) if warn else None, stop):
                try:
                    comparison = run_comparison(
                        detectors, inputs.frames, job.settings, labels, outputs, progress, inputs.total, stop
                    )
                finally:
                    outputs.close()
                if outputs.problems:  # pictures that could not be written: those inputs failed
                    comparison = replace(comparison, failed=(*comparison.failed, *outputs.problems))
                if kind == "videos":
                    comparison = replace(
                        comparison,
                        notes=(*comparison.notes, *inputs.notes),
                        video=VideoRun(
                            videos=inputs.videos,
                            vid_stride=job.vid_stride,
                            max_frames=job.max_frames,
                            side_by_side=tuple(p.relative_to(out).as_posix() for p in outputs.videos),
                            codec=str(codec) if codec else None,
                        ),
                    )
                write_report(comparison, out, outputs.pictures)
    return CompareRun(comparison, out, outputs.pictures, stop.signum)
