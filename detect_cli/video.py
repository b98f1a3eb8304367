"""Video in and out with OpenCV: opening sources, decoding them to `Frame`s, and picking a codec.

Frames are decoded in a background thread (`threads.read_ahead`) so decoding overlaps inference; the
run loop (`pipeline.run`) is the same one images go through. A file that ends before its header says
yields an error frame after the frames it did decode; a live stream that stops is reopened a bounded
number of times and then ends cleanly.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from detect_cli.errors import InputError, NoInputsError, OutputError
from detect_cli.pipeline import Frame
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    VideoInput,
    check_regular,
    download_url,
    quiet_opencv,
)
from detect_cli.threads import read_ahead
from detect_cli.writers import Codec, open_video_file

DEFAULT_FPS = 30.0  # for sources that report no usable frame rate (many webcams and streams)
DEFAULT_RECONNECTS = 3
RECONNECT_DELAY_S = 0.5  # doubled after each failed attempt, up to 8 s
Reconnected = Callable[[str, int], None]  # (source, frame index) of the first frame after a reconnect


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a source says about itself. `frames` is None for live sources (webcams, streams)."""

    width: int
    height: int
    fps: float
    frames: int | None

    @property
    def live(self) -> bool:
        return self.frames is None


@dataclass(frozen=True, slots=True)
class OpenedVideo:
    """A video input checked to open, with where to read it from (a downloaded URL is a local file)."""

    item: VideoInput
    location: str | int
    info: VideoInfo

    @property
    def live(self) -> bool:
        """Webcams and streams, which are reopened when they stop. A file is never live, even when its
        header gives no frame count: reopening it would replay it without end."""
        return self.item.webcam is not None or (self.item.url is not None and not self.item.url_is_file)


def _capture(location: str | int, timeout_s: float) -> Any:
    cv2 = quiet_opencv()
    if isinstance(location, int):
        return cv2.VideoCapture(location)
    ms = int(timeout_s * 1000)
    return cv2.VideoCapture(
        location, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    )


def _info(cap: Any) -> VideoInfo:
    cv2 = quiet_opencv()
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return VideoInfo(
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=fps if 0 < fps <= 1000 else DEFAULT_FPS,
        frames=int(count) if 0 < count < 2**31 else None,  # streams report 0, -1 or garbage
    )


def _cannot_open(item: VideoInput) -> str:
    if item.webcam is not None:
        return f"cannot open webcam {item.webcam} (no such camera, or it is in use)"
    if item.url and not item.url_is_file:
        return "cannot open stream (unreachable, refused, timed out, or not a video stream)"
    return "not a readable video (not a video file, or truncated before its index)"


def open_video(
    item: VideoInput,
    workdir: Path,
    timeout_s: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> OpenedVideo:
    """Check that a video input opens and read what it says about itself; raises InputError.

    A URL to a video file is downloaded into `workdir` first: read locally it can be seeked, its
    frame count is known and a truncated download shows as such.
    """
    if item.error:
        raise InputError(item.error)
    location: str | int
    if item.webcam is not None:
        location = item.webcam
    elif item.url:
        location = item.url
        if item.url_is_file:
            suffix = PurePosixPath(urllib.parse.urlsplit(item.url).path).suffix
            fd, tmp = tempfile.mkstemp(dir=workdir, suffix=suffix)
            os.close(fd)
            location = str(download_url(item.url, Path(tmp), timeout_s))
    else:
        assert item.path is not None
        if check_regular(item.path, "video").st_size == 0:
            raise InputError("empty file")
        location = str(item.path)
    cap = _capture(location, timeout_s)
    try:
        if not cap.isOpened():
            raise InputError(_cannot_open(item))
        info = _info(cap)
    finally:
        cap.release()
    if info.width <= 0 or info.height <= 0:
        raise InputError(_cannot_open(item))
    if info.width * info.height > max_pixels:
        raise InputError(
            f"frames are {info.width}x{info.height}, over the limit of {max_pixels / 1e6:g} million "
            "pixels (--max-pixels)"
        )
    return OpenedVideo(item, location, info)


def open_videos(
    items: Sequence[VideoInput],
    workdir: Path,
    timeout_s: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[OpenedVideo | VideoInput]:
    """Open every input up front, so a source that cannot be read is known before the model loads.

    Inputs that fail come back as VideoInputs carrying their error; when none opens, NoInputsError
    says why (exit code 2).
    """
    from dataclasses import replace

    opened: list[OpenedVideo | VideoInput] = []
    for item in items:
        try:
            opened.append(open_video(item, workdir, timeout_s, max_pixels))
        except InputError as e:
            opened.append(replace(item, error=str(e)))
    failed = [v for v in opened if isinstance(v, VideoInput)]
    if len(failed) == len(opened):
        if len(failed) == 1:
            raise NoInputsError(f"cannot read {failed[0].source}: {failed[0].error}")
        reasons = "; ".join(f"{v.source}: {v.error}" for v in failed[:3])
        raise NoInputsError(f"no video could be opened ({reasons}{'; …' if len(failed) > 3 else ''})")
    return opened


MIN_OUTPUT_FPS = 1.0  # encoders refuse frame rates far below 1 (mp4v: "timebase not set" at 0.001)


def output_fps(info: VideoInfo, stride: int = 1) -> float:
    """The annotated video's frame rate: the source's / stride, but at least 1 frame per second (a
    stride longer than the video leaves one frame, which must still make a video)."""
    return max(info.fps / stride, MIN_OUTPUT_FPS)


@dataclass(frozen=True)
class VideoSet:
    """The videos of a run, opened up front: each an OpenedVideo, or its VideoInput carrying the error
    that kept it from opening; the annotated video's fps per source; and the frames the run will process
    (None when a live source makes it unknown)."""

    videos: list[OpenedVideo | VideoInput]
    fps: dict[str, float]
    total: int | None
    stride: int = 1
    max_frames: int | None = None
    reconnects: int = DEFAULT_RECONNECTS
    timeout_s: float = DEFAULT_URL_TIMEOUT_S

    @property
    def opened(self) -> list[OpenedVideo]:
        return [v for v in self.videos if isinstance(v, OpenedVideo)]

    def frames(
        self,
        note: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        reconnected: Reconnected | None = None,
    ) -> Iterator[Frame]:
        """Their frames, as `video_frames` decodes them, with the settings they were opened with."""
        return video_frames(
            self.videos,
            self.stride,
            self.max_frames,
            self.reconnects,
            self.timeout_s,
            note,
            stop=stop,
            reconnected=reconnected,
        )


def open_for_run(
    items: Sequence[VideoInput],
    workdir: Path,
    stride: int = 1,
    max_frames: int | None = None,
    timeout_s: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reconnects: int = DEFAULT_RECONNECTS,
) -> VideoSet:
    """`open_videos`, and what a run needs to know of them before the first frame (the same for
    `detect video` and `detect compare`)."""
    videos = open_videos(items, workdir, timeout_s, max_pixels)
    opened = [v for v in videos if isinstance(v, OpenedVideo)]
    counts = [frames_to_process(v.info, stride, max_frames) for v in opened]
    total = None if None in counts else sum(c or 0 for c in counts) + len(videos) - len(opened)
    fps = {v.item.source: output_fps(v.info, stride) for v in opened}
    return VideoSet(videos, fps, total, stride, max_frames, reconnects, timeout_s)


def frames_to_process(info: VideoInfo, stride: int = 1, max_frames: int | None = None) -> int | None:
    """How many frames a run will process from a source (None when it is live and unbounded)."""
    if info.frames is None:
        return max_frames
    n = -(-info.frames // stride)
    return min(n, max_frames) if max_frames else n


def decode(
    video: OpenedVideo,
    stride: int = 1,
    max_frames: int | None = None,
    reconnects: int = DEFAULT_RECONNECTS,
    timeout_s: float = DEFAULT_URL_TIMEOUT_S,
    note: Callable[[str], None] | None = None,
    reconnected: Reconnected | None = None,
) -> Iterator[Frame]:
    """Every `stride`-th frame of one video, as `Frame`s numbered by their index in the source.

    Skipped frames are only grabbed, not converted. A file that stops before the frame count its
    header gives ends with an error frame; a live source that stops is reopened up to `reconnects`
    times in a row (a frame received resets the count), then ends, telling `note` why. `reconnected`
    is told (source, frame index) of the first frame after a reopened live source, before it is yielded
    (tracking starts new identities there).
    """
    item, info = video.item, video.info
    cap = _capture(video.location, timeout_s)
    index = done = failures = 0
    reopened = False
    start = time.monotonic()
    try:
        while max_frames is None or done < max_frames:
            wanted = index % stride == 0
            ok, image = cap.read() if wanted else (cap.grab(), None)
            if not ok:
                if video.live:
                    if failures >= reconnects:
                        if note:
                            note(f"{item.source}: stream stopped; gave up after {reconnects} reconnects")
                        return
                    cap.release()
                    time.sleep(min(RECONNECT_DELAY_S * 2**failures, 8.0))
                    failures += 1
                    cap = _capture(video.location, timeout_s)
                    reopened = True
                    continue
                if info.frames is not None and index < info.frames:
                    yield Frame(
                        item.source,
                        item.rel_path / f"{index:06d}.jpg",
                        None,
                        error=f"video ends early: decoded {index} of {info.frames} frames "
                        "(truncated or corrupt file)",
                        frame=index,
                        time_s=index / info.fps,
                    )
                return
            failures = 0
            if wanted:
                if reopened and done and reconnected:
                    reconnected(item.source, index)
                reopened = False
                t = time.monotonic() - start if video.live else index / info.fps
                yield Frame(item.source, item.rel_path / f"{index:06d}.jpg", image, frame=index, time_s=t)
                done += 1
            index += 1
    finally:
        cap.release()


def video_frames(
    videos: Sequence[OpenedVideo | VideoInput],
    stride: int = 1,
    max_frames: int | None = None,
    reconnects: int = DEFAULT_RECONNECTS,
    timeout_s: float = DEFAULT_URL_TIMEOUT_S,
    note: Callable[[str], None] | None = None,
    depth: int = 8,
    stop: threading.Event | None = None,
    reconnected: Reconnected | None = None,
) -> Iterator[Frame]:
    """The frames of each video in turn, decoded up to `depth` frames ahead in a background thread.

    An input that could not be opened becomes one error frame, so it is recorded and the run goes on.
    """
    for video in videos:
        if isinstance(video, VideoInput):
            yield Frame(video.source, video.rel_path / "error.jpg", None, error=video.error)
            continue
        if stop is not None and stop.is_set():
            return
        yield from read_ahead(
            decode(video, stride, max_frames, reconnects, timeout_s, note, reconnected), depth, stop=stop
        )


# --- writing --------------------------------------------------------------------------------------


# H.264 plays everywhere, browsers included: PyAV writes it with the FFmpeg (and libx264) its wheels
# bundle. pip's OpenCV wheels ship no H.264 encoder, so without PyAV it is OpenCV's: H.264 where that
# build has it, else MPEG-4 Part 2 in mp4 (VLC, mpv, QuickTime and Windows' players; not browsers),
# else Motion JPEG in avi, the last resort every build has.
CODECS = (
    Codec("avc1", ".mp4", "H.264", "pyav"),
    Codec("avc1", ".mp4", "H.264"),
    Codec("mp4v", ".mp4", "MPEG-4 Part 2"),
    Codec("MJPG", ".avi", "Motion JPEG"),
)
PROBE_FRAMES = 3


def can_write(codec: Codec) -> bool:
    """Write a few frames with this codec and read them back with OpenCV: some builds open a writer they
    cannot use, and PyAV may be missing or lack the encoder."""
    cv2 = quiet_opencv()
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="detect-codec-") as tmp:
        path = Path(tmp, "probe" + codec.suffix)
        try:
            writer = open_video_file(path, codec, 10.0, (64, 48))
            try:
                for i in range(PROBE_FRAMES):
                    writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
            finally:
                writer.close()
        except (OutputError, OSError, cv2.error):
            return False
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        return n == PROBE_FRAMES


@functools.cache
def pick_codec() -> Codec:
    """The first codec in CODECS that can be written here and read back (checked once per process)."""
    for codec in CODECS:
        if can_write(codec):
            return codec
    raise OutputError("cannot write video here (tried " + ", ".join(map(str, CODECS)) + ")")
