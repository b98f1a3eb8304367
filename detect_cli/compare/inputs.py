"""What `detect compare`'s sources are (`source_kind`: images or videos, never both), the checks on
them and their options before any model loads (`check_sources`), and the inputs opened as one stream
of frames (`open_inputs`): decoded images, or video frames decoded once in a background thread."""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from detect_cli import video
from detect_cli.compare.job import CompareJob
from detect_cli.compare.tracking import read_mot
from detect_cli.errors import BadOptionError, NoInputsError
from detect_cli.pipeline import Frame, image_frames
from detect_cli.signals import Stop
from detect_cli.sources import (
    URL_SCHEMES,
    VIDEO_SUFFIXES,
    ImageInput,
    VideoInput,
    discover_images,
    discover_videos,
)

# --- what the sources are -------------------------------------------------------------------------

SourceKind = Literal["images", "videos"]


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


def source_kind(
    sources: Sequence[str], recursive: bool = True, note: Callable[[str], None] | None = None
) -> SourceKind:
    """Whether the sources name images or videos. Naming both (a video file and a picture, say) is
    refused (BadOptionError, exit 2): compare them in two runs. A folder that holds both stands for its
    pictures, and `note` is told which videos are left out (`detect compare samples/` compares the two
    sample pictures beside the sample video). Sources that name nothing usable count as images, so the
    image run reports them as it always has."""

    def found(discover: Callable[[Sequence[str], bool], list], source: str) -> list:  # type: ignore[type-arg]
        try:
            return [item for item in discover([source], recursive) if item.error is None]
        except NoInputsError:
            return []

    videos: list[VideoInput] = []
    images: list[ImageInput] = []
    for source in sources:
        its_videos = [v for v in found(discover_videos, source) if _is_video(v)]
        its_images = [i for i in found(discover_images, source) if _is_image(i)]
        if its_videos and its_images and os.path.isdir(source):
            if note:
                note(
                    f"{source} holds pictures and {len(its_videos)} video(s); comparing the pictures "
                    f"(compare the videos in a run of their own, e.g. {its_videos[0].source})"
                )
            its_videos = []
        videos += its_videos
        images += its_images
    if videos and images:
        raise BadOptionError(
            f"compare takes images or videos, not both in one run ({videos[0].source} is a video, "
            f"{images[0].source} an image): compare them in two runs"
        )
    return "videos" if videos else "images"


# --- the inputs as frames -------------------------------------------------------------------------


@dataclass
class Inputs:
    """The inputs of one comparison as one stream of frames, and what the run needs to know of them."""

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
def open_inputs(
    job: CompareJob, kind: SourceKind, stop: Stop, reconnected: video.Reconnected | None = None
) -> Iterator[Inputs]:
    """The sources opened as one stream of frames, images or videos as `kind` says (`reconnected` is
    told when a stream is reopened); --mot-gt, the ground truth of one video, needs one video."""
    opened = video_inputs(job, stop, reconnected) if kind == "videos" else image_inputs(job, stop)
    with opened as inputs:
        if job.mot_gt is not None and inputs.videos != 1:
            raise BadOptionError("--mot-gt is the ground truth of one video: compare one video with it")
        yield inputs


@contextlib.contextmanager
def image_inputs(job: CompareJob, stop: Stop) -> Iterator[Inputs]:
    items = discover_images(job.sources, job.recursive, exclude=_exclude(job))  # named at discovery
    frames = image_frames(items, job.url_timeout, job.max_pixels, stop)
    with contextlib.closing(frames):
        yield Inputs(frames, len(items), images=items)


@contextlib.contextmanager
def video_inputs(
    job: CompareJob, stop: Stop, reconnected: video.Reconnected | None = None
) -> Iterator[Inputs]:
    """The videos opened (URLs downloaded into a temporary folder that lives as long as the run) and
    their frames decoded ahead in a thread, which closing the stream stops however the run ends."""
    items = discover_videos(job.sources, job.recursive, exclude=_exclude(job))
    with tempfile.TemporaryDirectory(prefix="detect-compare-") as workdir:
        found = video.open_for_run(
            items,
            Path(workdir),
            job.vid_stride,
            job.max_frames,
            job.url_timeout,
            job.max_pixels,
            job.reconnects,
        )
        notes: list[str] = []
        frames = found.frames(notes.append, stop, reconnected)
        with contextlib.closing(frames):
            yield Inputs(
                frames,
                found.total,
                fps=found.fps,
                videos=len(found.videos),
                notes=notes,
                video_items=items,
            )


# --- checks before any model loads ---------------------------------------------------------------


def check_sources(job: CompareJob, note: Callable[[str], None] | None = None) -> SourceKind:
    """Images or videos (`source_kind`), and the options that go with them, checked before anything is
    opened: labels are for images, --vid-stride and --max-frames for videos (`note` is told they are
    ignored for images), --track and --mot-gt for videos."""
    kind = source_kind(job.sources, job.recursive, note)
    if kind == "videos" and job.labelled:
        option = "--data" if job.data is not None else "--coco"
        raise BadOptionError(
            f"{option} gives labels for images; a video source has none, so leave it out "
            "(speed and agreement are still measured)"
        )
    if kind == "images" and (job.vid_stride != 1 or job.max_frames is not None) and note:
        note("--vid-stride and --max-frames apply to video sources; they are ignored for images")
    _check_tracking(job, kind)
    return kind


def _check_tracking(job: CompareJob, kind: SourceKind) -> None:
    """--track needs video; --mot-gt needs --track and a readable MOTChallenge file (checked before
    any model loads)."""
    if job.tracker and kind != "videos":
        raise BadOptionError("--track follows objects across the frames of a video; the sources are images")
    if job.mot_gt is not None:
        if not job.tracker:
            raise BadOptionError("--mot-gt scores tracks: add --track")
        read_mot(job.mot_gt, ground_truth=True)
