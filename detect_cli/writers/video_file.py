"""Writing one video file: H.264 through PyAV's bundled FFmpeg, or OpenCV's VideoWriter, as the
`Codec` says (`video.pick_codec` decides once).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from detect_cli.errors import OutputError

if TYPE_CHECKING:
    import numpy as np


VideoLibrary = Literal["pyav", "opencv"]


@dataclass(frozen=True, slots=True)
class Codec:
    """A video codec: its FourCC, the container it goes in, and the library that writes it (PyAV's
    bundled FFmpeg, or OpenCV's VideoWriter). video.pick_codec says which one works here."""

    fourcc: str
    suffix: str
    name: str
    library: VideoLibrary = "opencv"

    def __str__(self) -> str:
        via = ", PyAV" if self.library == "pyav" else ""
        return f"{self.name} ({self.fourcc}, {self.suffix}{via})"


class VideoFile:
    """One video file being written: `write` BGR frames of the size it was opened with, `close` to
    finish the container (after which it is playable). `open_video_file` picks the implementation."""

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _OpenCvVideo(VideoFile):
    """cv2.VideoWriter: whatever encoders this OpenCV build has (pip's wheels: no H.264)."""

    def __init__(self, path: Path, codec: Codec, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec.fourcc), fps, size)
        if not self._writer.isOpened():
            self._writer.release()
            raise OutputError(f"cannot write video {path} with {codec}")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self) -> None:
        self._writer.release()  # writes the container's index


class _PyAvVideo(VideoFile):
    """H.264 (libx264, yuv420p) in MP4 with its index at the front (faststart), written with PyAV:
    what every browser plays. yuv420p needs an even width and height, so a frame of odd size is padded
    by one pixel on the right and/or bottom (the edge pixels repeated); nothing is scaled, so the
    boxes drawn on it stay exactly where they were."""

    def __init__(self, path: Path, codec: Codec, fps: float, size: tuple[int, int]) -> None:
        import av

        self._size = size
        width, height = size[0] + size[0] % 2, size[1] + size[1] % 2
        try:
            self._container = av.open(
                str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"}
            )
            try:
                stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "crf": "23"}
            except BaseException:
                self._container.close()
                raise
        except av.FFmpegError as e:
            raise OutputError(f"cannot write video {path} with {codec}: {e}") from e
        self._stream = stream
        self._av = av

    def _pad(self, frame: np.ndarray) -> np.ndarray:
        import numpy as np

        h, w = frame.shape[:2]
        if w % 2 == 0 and h % 2 == 0:
            return frame
        return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")

    def write(self, frame: np.ndarray) -> None:
        av_frame = self._av.VideoFrame.from_ndarray(self._pad(frame), format="bgr24")
        try:
            self._container.mux(self._stream.encode(av_frame))
        except self._av.FFmpegError as e:
            raise OSError(getattr(e, "errno", None) or 0, f"cannot encode a frame: {e}") from e

    def close(self) -> None:
        try:
            try:
                self._container.mux(self._stream.encode(None))  # flush the frames the encoder holds
            finally:
                self._container.close()
        except self._av.FFmpegError as e:
            raise OSError(getattr(e, "errno", None) or 0, f"cannot finish the video: {e}") from e


def open_video_file(path: Path, codec: Codec, fps: float, size: tuple[int, int]) -> VideoFile:
    """A video file at `path` (its suffix is the codec's), `size` = (width, height); OutputError when the
    library cannot write it (PyAV not installed, an encoder OpenCV lacks)."""
    if codec.library == "pyav":
        try:
            import av  # noqa: F401
        except ImportError as e:
            raise OutputError(f"cannot write {codec}: PyAV is not installed (pip install av)") from e
        return _PyAvVideo(path, codec, fps, size)
    return _OpenCvVideo(path, codec, fps, size)
