"""Annotated pictures (in the input's own format, else PNG) and annotated videos (one per source,
playable under its final name also when the run is interrupted).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli.errors import OutputError
from detect_cli.render import draw_detections
from detect_cli.results import ImageResult
from detect_cli.sources import output_file
from detect_cli.tracking import track_ids

if TYPE_CHECKING:
    import numpy as np
from detect_cli.writers.atomic import atomic_write_bytes
from detect_cli.writers.sinks import Sink
from detect_cli.writers.video_file import Codec, VideoFile, open_video_file


class AnnotatedImageWriter(Sink):
    """The input image with its boxes drawn (with their track ids, for a tracked video's frames), at
    root/<input path>, in the input's own format; `caption` (a model with random weights says so:
    `models.weights_caption`) over its top-left corner."""

    def __init__(self, root: Path, caption: str | None = None) -> None:
        self.root = root
        self.caption = caption

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if image is None or not result.ok:
            return
        import cv2

        first, fallback = self.targets(self.root, rel_path)
        drawn = draw_detections(image, result.detections, self.caption, track_ids(result))
        try:
            ok, buf = cv2.imencode(first.suffix, drawn)
        except cv2.error:  # a suffix OpenCV has no encoder for ('conf=0.5' ends in '.5') raises
            ok = False
        target = first
        if not ok:  # an encoder this OpenCV lacks: fall back to PNG rather than lose the picture
            ok, buf = cv2.imencode(fallback.suffix, drawn)
            target = fallback
        if not ok:
            raise OutputError(f"cannot encode the annotated image as {first.suffix} or {fallback.suffix}")
        atomic_write_bytes(target, buf.tobytes())

    @staticmethod
    def targets(root: Path, rel_path: PurePosixPath) -> list[Path]:
        """Where the picture goes: in the input's own format, else as PNG."""
        suffix = rel_path.suffix.lower() or ".jpg"
        return [root / output_file(rel_path, suffix), root / output_file(rel_path, ".png")]


class AnnotatedVideoWriter(Sink):
    """One annotated video per source, at root/<source's rel_path>.<codec's suffix>.

    Video frames arrive with rel_path `<source's rel_path>/<frame>.jpg`; a new parent starts a new
    video. Each video is written under a temporary name and renamed when finished, also when the run
    is interrupted, so it is always playable under its final name. Frames keep the first frame's size.
    A video that cannot be written (its writer will not open, a frame cannot be encoded, a rename
    fails) is named in `problems` and its frames are passed over; the other videos, and every frame's
    record, are not affected. The file is written by `open_video_file` (PyAV or OpenCV, as the codec
    says).
    """

    def __init__(
        self, root: Path, fps: Mapping[str, float], codec: Codec, caption: str | None = None
    ) -> None:
        self.root = root
        self.codec = codec
        self.caption = caption  # over each frame's top-left corner (a model with random weights)
        self.written: list[Path] = []
        self.problems: list[tuple[str, str]] = []  # (source, why its video was not written)
        self._fps = fps
        self._writer: VideoFile | None = None
        self._key: PurePosixPath | None = None
        self._source = ""
        self._tmp = self._final = root
        self._size = (0, 0)

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if image is None:
            return
        import cv2

        if rel_path.parent != self._key:
            self._finish()
            self._key, self._source = rel_path.parent, result.source
            try:
                self._open(rel_path.parent, result.source, image)
            except (OutputError, OSError, cv2.error) as e:
                self._fail(f"annotated video not written: {e}")
        if self._writer is None:
            return  # this video could not be written: its frames are still recorded
        frame = self.draw(image, result) if result.ok else image
        if (frame.shape[1], frame.shape[0]) != self._size:  # a stream that changed resolution
            frame = cv2.resize(frame, self._size)
        try:
            self._writer.write(frame)
        except OSError as e:
            self._fail(f"annotated video not written: {e.strerror or e}")

    def draw(self, image: np.ndarray, result: ImageResult) -> np.ndarray:
        """The frame as the video shows it: its boxes, with their track ids (a subclass adds trails)."""
        return draw_detections(image, result.detections, self.caption, track_ids(result))

    def _fail(self, problem: str) -> None:
        self.problems.append((self._source, problem))
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):  # it already failed; what matters is the note and cleanup
                writer.close()
        Path(self._tmp).unlink(missing_ok=True)

    def _open(self, key: PurePosixPath, source: str, image: np.ndarray) -> None:
        self._final = self.root / key.with_name(key.name + self.codec.suffix)
        self._tmp = self._final.with_name(f".{key.name}.part{self.codec.suffix}")
        self._final.parent.mkdir(parents=True, exist_ok=True)
        # The video libraries open by name, following links: a link planted at the part name goes first.
        self._tmp.unlink(missing_ok=True)
        self._size = (image.shape[1], image.shape[0])
        self._writer = open_video_file(self._tmp, self.codec, self._fps.get(source, 30.0), self._size)

    def _finish(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()  # writes the container's index: the file is now playable
        except OSError as e:
            self._fail(f"annotated video not written: {e.strerror or e}")
            return
        try:
            os.replace(self._tmp, self._final)
        except OSError as e:
            self._fail(f"annotated video not written: {e.strerror or e}")
            return
        self.written.append(self._final)

    def close(self) -> None:
        self._finish()
