"""What `detect compare` writes as the run goes: each model's detections (`detections/<model>.jsonl`),
side-by-side pictures or videos, and a few scaled pictures kept for report.html. Drawing and encoding use
OpenCV, imported when the first picture is made."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli import writers
from detect_cli.compare.report import HTML_PICTURE_WIDTH, HTML_PICTURES, REPORT_RECORD
from detect_cli.compare.results import DETECTIONS, Picture
from detect_cli.errors import OutputError
from detect_cli.pipeline import Frame
from detect_cli.render import Panel, side_by_side
from detect_cli.results import RANDOM_WEIGHTS, ImageResult
from detect_cli.sources import output_file
from detect_cli.threads import ThreadedSink
from detect_cli.tracking import track_ids
from detect_cli.writers import (
    RUN_FAULTS,
    AnnotatedVideoWriter,
    Codec,
    JsonlWriter,
    Sink,
    atomic_write_bytes,
)

if TYPE_CHECKING:
    import numpy as np


SIDE_BY_SIDE = "side-by-side"  # the folder of the side-by-side pictures and videos
FILE_LIST = ".compare-files.jsonl"  # what a comparison wrote into its folder (see FileList)


class FileList(writers.FileList):
    """The files a comparison writes into its folder (writers.FileList, in FILE_LIST), so
    `compare --exist-ok` removes exactly what an earlier comparison wrote there (`remove_listed`)."""

    def __init__(self, out: Path) -> None:
        super().__init__(out, FILE_LIST)


def holds_comparison(out: Path) -> bool:
    """`out` holds what a comparison wrote: its list, its report, or (versions before the list) its
    detections."""
    return (
        (out / FILE_LIST).exists()
        or (out / REPORT_RECORD).exists()
        or any((out / DETECTIONS).glob("*.jsonl"))
    )


def remove_listed(out: Path) -> int:
    """Delete the files an earlier comparison listed in `out` (its pictures, videos, detections, report)
    and the folders they leave empty (writers.remove_listed). Returns the number removed."""
    return writers.remove_listed(out, FILE_LIST)


@dataclass
class CompareOutputs:
    """Called with each input's frame and per-model results: writes `detections/<model>.jsonl` and keeps
    a few pictures (scaled) for report.html, those of the inputs numbered in `picture_indexes` (from 0),
    or the first `keep` when it is None.

    When `save`: an image's side-by-side picture goes to `side-by-side/<output name>.jpg` (its input's
    name in the run: sources.output_names); a video's frames,
    given a `codec`, go to the video `side-by-side/<video path><codec suffix>` (at `video_fps[source]`),
    and the kept ones also to `side-by-side/<video path>/<frame>.jpg`."""

    out: Path
    labels: Sequence[str]
    save: bool = True
    keep: int = HTML_PICTURES
    pictures: list[Picture] = field(default_factory=list)
    picture_indexes: Collection[int] | None = None
    video_fps: Mapping[str, float] = field(default_factory=dict)
    codec: Codec | None = None
    files: FileList | None = None  # where each file is listed before it is written
    random: Collection[str] = ()  # the labels of models with random weights: their panels say so

    def __post_init__(self) -> None:
        (self.out / DETECTIONS).mkdir(parents=True, exist_ok=True)
        paths = [self.out / DETECTIONS / f"{label}.jsonl" for label in self.labels]
        self._list(*paths)
        # Started empty: a comparison's detections are its own, never added to an earlier one's.
        self._jsonl = [JsonlWriter(path, fresh=True) for path in paths]
        self._seen = 0
        self.problems: list[tuple[str, str]] = []  # (input, why its side-by-side was not written)
        self._video_writer: AnnotatedVideoWriter | None = None
        self._video: Sink | None = None
        if self.save and self.codec is not None:
            self._video_writer = AnnotatedVideoWriter(self.out / SIDE_BY_SIDE, self.video_fps, self.codec)
            self._video = ThreadedSink(self._video_writer)  # encoding overlaps the next frame's inference

    def __call__(self, frame: Frame, results: Sequence[ImageResult]) -> None:
        n, self._seen = self._seen, self._seen + 1
        for sink, result in zip(self._jsonl, results, strict=True):
            sink.write(result, frame.rel_path, None)
        is_video_frame = frame.frame is not None
        # An image a model failed on is left out; a video frame is kept (the panel says "failed") so
        # the side-by-side video keeps the source's frames and timing.
        if frame.image is None or (not is_video_frame and not all(r.ok for r in results)):
            return
        wanted = self.picture_indexes is None or n in self.picture_indexes
        sample = wanted and len(self.pictures) < self.keep
        to_video = self._video is not None and is_video_frame
        to_file = self.save and (sample if is_video_frame else True)
        if not (sample or to_video or to_file):
            return
        import cv2

        panels: list[Panel] = [
            (_title(label, r, label in self.random), r.detections, track_ids(r))
            for label, r in zip(self.labels, results, strict=True)
        ]
        picture = side_by_side(frame.image, panels)
        if to_video:
            assert self._video is not None
            # The picture carries every model's boxes already: the writer is given none to draw.
            self._video.write(ImageResult(frame.source, "side-by-side"), frame.rel_path, picture)
        if to_file:
            ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
            rel = PurePosixPath(SIDE_BY_SIDE, output_file(frame.rel_path, ".jpg"))
            self._list(self.out / rel)  # its failure is the comparison's: raised
            try:
                if not ok:
                    raise OutputError("cannot encode it as JPEG")
                atomic_write_bytes(self.out / rel, buf.tobytes())
            except (OSError, OutputError) as e:  # this input's picture, not the comparison, failed
                if isinstance(e, OSError) and e.errno in RUN_FAULTS:
                    raise OutputError(f"cannot write {self.out / rel}: {e.strerror}") from e
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                self.problems.append((frame.source, f"side-by-side picture not written: {reason}"))
        if sample:
            caption = frame.source if frame.frame is None else f"{frame.source}, frame {frame.frame}"
            self.pictures.append(Picture(caption, _small_jpeg(picture)))

    def _list(self, *paths: Path) -> None:
        if self.files is not None:
            self.files.add(*paths)

    @property
    def videos(self) -> list[Path]:
        """The side-by-side videos written (complete once `close` has run)."""
        return list(self._video_writer.written) if self._video_writer else []

    def close(self) -> None:
        try:
            if self._video is not None:
                self._video.close()  # finalizes the video: playable, also after Ctrl-C
        finally:
            for sink in self._jsonl:
                sink.close()


def _title(label: str, result: ImageResult, random: bool = False) -> str:
    said = f"{label}  {RANDOM_WEIGHTS}" if random else label  # its boxes are no detections
    if not result.ok:
        return f"{said}  failed"
    ms = f"{result.speed_ms.total:.0f} ms" if result.speed_ms else ""
    return f"{said}  {ms}  {len(result.detections)} boxes"


def _small_jpeg(image: np.ndarray) -> bytes:
    import cv2

    h, w = image.shape[:2]
    if w > HTML_PICTURE_WIDTH:
        image = cv2.resize(
            image, (HTML_PICTURE_WIDTH, round(h * HTML_PICTURE_WIDTH / w)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""
