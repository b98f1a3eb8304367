"""Output sinks: results.jsonl (frames.jsonl for videos), CSV, YOLO labels, COCO results, annotated
images and annotated videos.

Each sink is a context manager fed one result at a time, so nothing accumulates in memory. Every file
but results.jsonl is written to a temporary name first and renamed into place, so a half-written file
never exists under its final name. results.jsonl is appended and flushed per input, after that input's
other outputs are written: it is the run's commit log (see resume.py). The tables (CSV, COCO) are built
from results.jsonl when a run ends, so they always hold exactly what it records, resumed runs included.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from detect_cli.errors import OutputError
from detect_cli.models import is_coco80
from detect_cli.render import draw_detections
from detect_cli.results import BadRecord, ImageResult, check_record
from detect_cli.rundir import open_own

if TYPE_CHECKING:
    import numpy as np

FORMATS = ("jsonl", "csv", "txt", "coco")


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


RESULTS_JSONL = "results.jsonl"  # the record of an image run
FRAMES_JSONL = "frames.jsonl"  # the record of a video run


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a unique temporary name beside `path`, then rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "xb") rather than mkstemp: the file gets the user's umask, not mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with tmp.open("xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: name it
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def open_new(path: Path) -> int:
    """A file descriptor for a new, empty file at `path` (a temporary `.part` name), for writing.

    Whatever already has that name (a part file left by a killed run, or a symlink planted there, say
    to an input) is unlinked first, which removes a link and never its target; the open then creates
    the file or fails (O_EXCL, O_NOFOLLOW), so the write can never go through a link onto another file.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o666)  # 0o666 less the umask, as open() gives


class HasRelPath(Protocol):
    @property
    def rel_path(self) -> PurePosixPath: ...


Named = TypeVar("Named", bound=HasRelPath)


def _fold(path: PurePosixPath | str) -> str:
    """A name as a case-insensitive (or normalising) file system compares it."""
    return unicodedata.normalize("NFC", str(path)).casefold()


def output_names(rel_paths: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    """Output names for a run's inputs: each input's per-input files (annotated picture, YOLO label,
    compare's side-by-side, explain's picture) are `output_file(name, suffix)`, and no two inputs' names
    give the same file, even on a case-insensitive file system.

    An input is named by its path without the suffix (photos/x.jpg → photos/x: labels/photos/x.txt)
    unless another input of the run has that name too, ignoring case (x.jpg beside x.png, or y.jpg beside
    Y.JPG); then each of them keeps its suffix in the name (photos/x.jpg → labels/photos/x.jpg.txt,
    photos/x.png → labels/photos/x.png.txt), and a name still taken gets -2, -3 … before the suffix, in
    the order of the paths sorted. The names depend only on the set of inputs, not on their order, so a
    resumed run names its inputs as the first did. Returned as relative paths that keep the input's
    suffix (photos/x.jpg.jpg for a kept-suffix name): `output_file` swaps it for the output's.
    """
    by_stem = Counter(_fold(r.with_suffix("")) for r in rel_paths)
    names: dict[int, PurePosixPath] = {}
    taken: set[str] = set()
    for i, rel in enumerate(rel_paths):
        if by_stem[_fold(rel.with_suffix(""))] == 1:
            names[i] = rel
            taken.add(_fold(rel.with_suffix("")))
    shared = sorted((i for i in range(len(rel_paths)) if i not in names), key=lambda i: str(rel_paths[i]))
    for i in shared:
        rel = rel_paths[i]
        stem, n = rel.name, 1
        while _fold(rel.parent / stem) in taken:
            n += 1
            stem = f"{rel.stem}-{n}{rel.suffix}"
        taken.add(_fold(rel.parent / stem))
        names[i] = rel.parent / f"{stem}{rel.suffix}"
    return [names[i] for i in range(len(rel_paths))]


def name_outputs(items: Sequence[Named]) -> list[Named]:
    """`items` (inputs with a `rel_path`) with their rel_path made their output name (`output_names`)."""
    names = output_names([item.rel_path for item in items])
    return [
        item if name == item.rel_path else replace(item, rel_path=name)  # type: ignore[type-var]
        for item, name in zip(items, names, strict=True)
    ]


def output_file(rel_path: PurePosixPath, suffix: str) -> PurePosixPath:
    """The file of one kind (its `suffix`) for the input named `rel_path` (see `output_names`)."""
    return rel_path.with_suffix(suffix)


def json_text(record: Any, indent: int | None = None) -> str:
    """JSON text, UTF-8 where it can be. A file name that is not valid UTF-8 reaches us as text with
    lone surrogates (`os.fsdecode`); such text is written with `\\udcXX` escapes instead, which is
    valid JSON and gives the exact bytes back (`os.fsencode(json.loads(line)["path"])`)."""
    text = json.dumps(record, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, indent=indent)
    return text


def jsonl_line(record: Mapping[str, Any]) -> str:
    """One line of a .jsonl file (see `json_text`)."""
    return json_text(record)


def repair_tail(path: Path) -> bool:
    """Cut a last line left half-written by a killed run (or a full disk), so appended records start on
    a line of their own. True when something was cut."""
    if not path.exists():
        return False
    with open(path, "rb+", opener=open_own) as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # Walk back in blocks to the last newline; everything after it is the broken record.
        pos, keep = size, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            nl = f.read(step).rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        f.truncate(keep)
    return True


Failure = tuple[ImageResult, ImageResult]  # (the result as inferred, the failure record that replaced it)


class Sink:
    """Base sink: `write` one result (with its decoded image when there is one), `close` at the end."""

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output; called once, also when the run is interrupted."""

    def failures(self) -> list[Failure]:
        """Inputs whose outputs could not be written, recorded as failed instead (see SinkGroup)."""
        return []

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _LineFile(Sink):
    """A text file appended to and flushed per input."""

    def __init__(self, path: Path, mode: str = "w") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "a":
            repair_tail(path)  # a cut last line (a killed run, a full disk) must not swallow the next
        self._f: IO[str] = open(path, mode, encoding="utf-8", newline="", opener=open_own)

    def _flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class _WholeFile(Sink):
    """A file streamed to a temporary name and renamed into place at `close`; an error inside the
    `with` block discards it instead, so the final name only ever holds a complete file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        # A name that is not UTF-8 (lone surrogates) is written with backslash escapes: the table stays
        # valid UTF-8; results.jsonl keeps the exact name.
        self._f: IO[str] = open(
            open_new(self._tmp), "w", encoding="utf-8", newline="", errors="backslashreplace"
        )

    def _finish(self) -> None:
        """Write what closes the file (a footer, say) before it is renamed."""

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._finish()
            self._f.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._f.closed:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                self._f.close()
        self._tmp.unlink(missing_ok=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


FIRST_FREE_ID = 1_000_000_000  # where image ids not taken from a file's name start (above COCO's own)


def name_number(source: str) -> int | None:
    """The number a file is named by (COCO's 000000000139.jpg → 139): ASCII digits only. A name in
    other digits (`²`, `٣`) is not taken for a number: `int()` refuses some and reads others, and
    neither is what a dataset's image id means."""
    stem = PurePosixPath(source).stem
    return int(stem) if stem.isascii() and stem.isdigit() else None


def _id_key(record: Mapping[str, Any]) -> tuple[str, Any]:
    """Which input (or video frame) a record is about: as resume keys it, and its frame."""
    return record.get("path") or record["source"], record.get("frame")


class ImageIds:
    """COCO image ids for the records of one run folder: unique in it, and the same for an input every
    time it is recorded (a resumed or redone input keeps its id).

    An image named by a number (ASCII digits) gets that number unless an input recorded before it has
    it (a/1.jpg, then b/001.jpg or b/1.jpg); every other input, and every video frame, gets the next free
    id from FIRST_FREE_ID up, in the order they are recorded.
    """

    def __init__(self) -> None:
        self._used: set[int] = set()
        self._by_key: dict[tuple[str, Any], int] = {}
        self._next = FIRST_FREE_ID

    def note(self, record: Mapping[str, Any]) -> None:
        """Learn an id a record already holds."""
        image_id = record.get("image_id")
        if isinstance(image_id, int) and not isinstance(image_id, bool):
            self._used.add(image_id)
            self._by_key[_id_key(record)] = image_id

    def assign(self, record: Mapping[str, Any]) -> int:
        """The id of the input a record is about: the one it was given before, else a new one."""
        key = _id_key(record)
        if key in self._by_key:
            return self._by_key[key]
        number = name_number(record["source"]) if record.get("frame") is None else None
        if number is None or number in self._used:
            while self._next in self._used:
                self._next += 1
            number = self._next
        self._used.add(number)
        self._by_key[key] = number
        return number


class JsonlWriter(_LineFile):
    """results.jsonl: one JSON object per input (or frame), the record of the run.

    A run's record (results.jsonl, frames.jsonl; `image_ids` says otherwise) gives each record its COCO
    `image_id` (`ImageIds`, seeded from the records already there), so the tables built from it, after
    a resumed run too, name every image by one id. `fresh` starts the file empty instead of appending.
    """

    def __init__(
        self,
        path: Path,
        echo: Callable[[str], None] | None = None,
        image_ids: bool | None = None,
        fresh: bool = False,
    ) -> None:
        if fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(open_new(path))  # a new file: never through a link left at the name
        super().__init__(path, "a")
        self._echo = echo
        self._ids: ImageIds | None = None
        if image_ids if image_ids is not None else path.name in (RESULTS_JSONL, FRAMES_JSONL):
            self._ids = ImageIds()
            for record in iter_jsonl(path):
                self._ids.note(record)

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        record = result.to_dict()
        if self._ids is not None:
            record["image_id"] = self._ids.assign(record)
        self.write_record(record)

    def write_record(self, record: Mapping[str, Any]) -> None:
        """One line, flushed; the line goes to `echo` too (`--json`)."""
        line = jsonl_line(record)
        try:
            self._f.write(line + "\n")
            self._flush()
            vanished = os.fstat(self._f.fileno()).st_nlink == 0
        except OSError as e:  # the run's record: without it nothing is done, so the run ends here
            if e.errno in RUN_FAULTS:
                raise run_fault(OSError(e.errno, e.strerror, str(self.path)), self.path) from e
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from e
        if vanished:  # records written on would be lost with the deleted file
            raise OutputError(f"{self.path} was deleted while the run wrote it (its folder removed?)")
        if self._echo:
            self._echo(line)


CSV_COLUMNS = (
    "source",
    "width",
    "height",
    "model",
    "class_id",
    "class_name",
    "confidence",
    "x1",
    "y1",
    "x2",
    "y2",
    "error",
)


class CsvWriter(_WholeFile):
    """results.csv: one row per detection; an input with no detection (or an error) still gets a row.

    For videos (`frames=True`) each row also names its frame and time after the source.
    """

    def __init__(self, path: Path, frames: bool = False) -> None:
        super().__init__(path)
        self._frames = frames
        self._csv = csv.writer(self._f)
        self._csv.writerow((CSV_COLUMNS[0], "frame", "time_s", *CSV_COLUMNS[1:]) if frames else CSV_COLUMNS)

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        head = [result.source, result.width, result.height, result.model]
        if self._frames:
            time_s = "" if result.time_s is None else f"{result.time_s:.4f}"
            head[1:1] = ["" if result.frame is None else result.frame, time_s]
        if not result.detections:
            self._csv.writerow([*head, "", "", "", "", "", "", "", result.error or ""])
        for d in result.detections:
            self._csv.writerow(
                [*head, d.class_id, d.class_name, f"{d.confidence:.6f}", *(f"{v:.3f}" for v in d.xyxy), ""]
            )


class YoloTxtWriter(Sink):
    """labels/<input path>.txt in YOLO format: `class cx cy w h confidence`, normalised to 0-1."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if not result.ok or not result.width or not result.height:
            return
        w, h = result.width, result.height
        lines = []
        for d in result.detections:
            x1, y1, x2, y2 = d.xyxy
            lines.append(
                f"{d.class_id} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f} {d.confidence:.6f}\n"
            )
        atomic_write_bytes(self.target(self.root, rel_path), "".join(lines).encode())

    @staticmethod
    def target(root: Path, rel_path: PurePosixPath) -> Path:
        return root / output_file(rel_path, ".txt")


def coco80_to_coco91() -> list[int]:
    from ultralytics.data.converter import coco80_to_coco91_class

    return coco80_to_coco91_class()


class CocoWriter(_WholeFile):
    """coco_results.json: the COCO results format (a list of {image_id, category_id, bbox, score}).

    Streams the array to a temporary file and renames it at close. For models with the 80 COCO classes,
    category ids are mapped to COCO's 91-id scheme so the file scores against COCO annotations as is.
    `image_id` is the one the run's record gave the input (`ImageIds`); `write` gives one the same way.
    """

    def __init__(self, path: Path, names: dict[int, str]) -> None:
        super().__init__(path)
        self._f.write("[")
        self._first = True
        self._ids = ImageIds()
        self._category = coco80_to_coco91() if is_coco80(names) else None

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        self.add(result, self._ids.assign(result.to_dict()))

    def add(self, result: ImageResult, image_id: int) -> None:
        """The result's detections, as the image `image_id`."""
        if not result.ok:
            return
        for d in result.detections:
            x1, y1, x2, y2 = d.xyxy
            record = {
                "image_id": image_id,
                "category_id": self._category[d.class_id] if self._category else d.class_id,
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                "score": round(d.confidence, 5),
                "file_name": result.source,
            }
            self._f.write(("" if self._first else ",") + "\n" + json.dumps(record))
            self._first = False

    def _finish(self) -> None:
        self._f.write("\n]\n")


class AnnotatedImageWriter(Sink):
    """The input image with its boxes drawn, at root/<input path>, in the input's own format;
    `caption` (a model with random weights says so: `models.weights_caption`) over its top-left corner."""

    def __init__(self, root: Path, caption: str | None = None) -> None:
        self.root = root
        self.caption = caption

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if image is None or not result.ok:
            return
        import cv2

        first, fallback = self.targets(self.root, rel_path)
        drawn = draw_detections(image, result.detections, self.caption)
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
        """The frame as the video shows it (a subclass draws more: track ids and trails)."""
        return draw_detections(image, result.detections, self.caption)

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


TABLES = {"csv": "results.csv", "coco": "coco_results.json"}


# Errors that are the run's own, not one input's: the disk (or the quota) is full, the file system
# went read-only. They end the run with one line instead of failing every input after them.
RUN_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def run_fault(e: OSError, record: Path | None) -> OutputError:
    """The one-line error that ends a run on a full disk (or a read-only one): what failed and, for an
    image run (its record is results.jsonl), how to finish it once there is room: every input recorded
    so far stays done."""
    where = f" {e.filename}" if e.filename else ""
    message = f"cannot write{where}: {e.strerror or e}; the run stopped"
    if record is None or record.name == RESULTS_JSONL:
        kept = f"the inputs recorded in {record} are done" if record else "the inputs recorded are done"
        message += f" ({kept}): make room, then rerun the same command with --resume to finish it"
    return OutputError(message)


def output_paths(out: Path, rel_path: PurePosixPath, formats: Iterable[str], save_images: bool) -> list[Path]:
    """Every file a run may write for one input (for the check that none of them is an input)."""
    paths = []
    if "txt" in set(formats):
        paths.append(YoloTxtWriter.target(out / "labels", rel_path))
    if save_images:
        paths += AnnotatedImageWriter.targets(out, rel_path)
    return paths


def output_sinks(
    out: Path, formats: Iterable[str], save_images: bool, caption: str | None = None
) -> list[Sink]:
    """The per-input files a run asked for (annotated images, with `caption` on them, YOLO labels)."""
    sinks: list[Sink] = []
    if "txt" in set(formats):
        sinks.append(YoloTxtWriter(out / "labels"))
    if save_images:
        sinks.append(AnnotatedImageWriter(out, caption))
    return sinks


class SinkGroup(Sink):
    """Several sinks fed as one, in order: wrapped in one ThreadedSink they keep their order (an input's
    record is still written after its files) while all the writing moves off the run loop.

    `outputs` are an input's own files; `records` (results.jsonl) come after them. When an output
    cannot be written for one input (a name the file system refuses, no permission in a sub-folder,
    an image too large for its format), that input is recorded as failed, with the reason, and the run
    goes on; a failure of a record sink is the run's own and is raised.
    """

    def __init__(self, outputs: Sequence[Sink], records: Sequence[Sink] = ()) -> None:
        self.outputs = list(outputs)
        self.records = list(records)
        self._failures: list[Failure] = []

    @property
    def sinks(self) -> list[Sink]:
        return [*self.outputs, *self.records]

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        final = result
        for sink in self.outputs:
            try:
                sink.write(result, rel_path, image)
            except Exception as e:  # any writer's failure is this input's, not the run's
                if isinstance(e, OSError) and e.errno in RUN_FAULTS:
                    raise run_fault(e, self._record_path) from e
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).strip()
                final = replace(
                    result,
                    detections=(),
                    speed_ms=None,
                    error=f"cannot write its outputs: {type(e).__name__}: {reason.splitlines()[0]}",
                )
                self._failures.append((result, final))
                break
        for sink in self.records:
            sink.write(final, rel_path, image)

    @property
    def _record_path(self) -> Path | None:
        return next((s.path for s in self.records if isinstance(s, JsonlWriter)), None)

    def close(self) -> None:
        close_all(self.sinks, self._record_path)

    def failures(self) -> list[Failure]:
        return list(self._failures)


def open_sinks(
    out: Path,
    formats: Iterable[str],
    names: dict[int, str],
    save_images: bool,
    echo: Callable[[str], None] | None = None,
    record: str = RESULTS_JSONL,
    caption: str | None = None,
) -> SinkGroup:
    """The sinks of a run, the `record` jsonl last (results.jsonl, or frames.jsonl for videos): an input
    is recorded only once its files are written (or as failed, when they could not be).

    The tables (csv, coco) are not among them: `write_tables` builds them from the record at the end.
    """
    return SinkGroup(output_sinks(out, formats, save_images, caption), [JsonlWriter(out / record, echo)])


def iter_jsonl(path: Path, bad: list[tuple[int, str]] | None = None) -> Iterator[dict[str, Any]]:
    """The records of a results.jsonl one at a time. A line that is not a record (cut short by a crash,
    garbage written by something else, or JSON of another shape: `results.check_record`) is skipped,
    and added to `bad` as (line number, text)."""
    with open(path, encoding="utf-8", errors="surrogateescape", opener=open_own) as f:
        for n, line in enumerate(f, 1):
            try:
                record = check_record(json.loads(line))
            except (json.JSONDecodeError, BadRecord):  # not JSON, or JSON of another shape
                record = None
            if record is not None:
                yield record
            elif bad is not None and line.strip():
                bad.append((n, line.rstrip("\n")))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a results.jsonl (skipping a last line cut short by a crash)."""
    return list(iter_jsonl(path))


def write_tables(
    out: Path, formats: Iterable[str], names: dict[int, str], record: str = RESULTS_JSONL
) -> list[Path]:
    """(Re)build results.csv / coco_results.json from the run's record (out/results.jsonl, or
    frames.jsonl), streaming, each renamed into place when complete. Returns the files written."""
    fmts = set(formats)
    makers: list[_WholeFile] = []
    if "csv" in fmts:
        makers.append(CsvWriter(out / TABLES["csv"], frames=record == FRAMES_JSONL))
    if "coco" in fmts:
        makers.append(CocoWriter(out / TABLES["coco"], names))
    if not makers:
        return []
    jsonl = out / record
    try:
        ids = ImageIds()  # records of older versions hold no image_id: given one here, past those held
        for r in iter_jsonl(jsonl) if jsonl.exists() else ():
            ids.note(r)
        records = iter_jsonl(jsonl) if jsonl.exists() else iter(())
        for r in records:
            result = ImageResult.from_dict(r)
            for m in makers:
                if isinstance(m, CocoWriter):
                    m.add(result, ids.assign(r))
                else:
                    m.write(result, PurePosixPath(result.source), None)
        for m in makers:
            m.close()
    except BaseException as e:
        for m in makers:
            m.abort()
        if isinstance(e, OSError):
            raise OutputError(
                f"cannot write {', '.join(m.path.name for m in makers)}: {e.strerror or e} "
                f"(the records are complete in {jsonl}; rerun with --resume to build the tables)"
            ) from e
        raise
    return [m.path for m in makers]


def close_all(sinks: Sequence[Sink], record: Path | None = None) -> None:
    """Close every sink, even when one fails; then raise the first failure as one line (with the way to
    finish the run when the disk is full)."""
    errors = []
    for s in sinks:
        try:
            s.close()
        except OSError as e:
            errors.append(e)
    if errors:
        if errors[0].errno in RUN_FAULTS:
            raise run_fault(errors[0], record) from errors[0]
        raise OutputError(f"could not finish writing outputs: {errors[0]}") from errors[0]
