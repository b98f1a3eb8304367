"""INT8 for OpenVINO: post-training quantization with NNCF, calibrated on the user's own pictures.

The fp32 OpenVINO export (backends/export.py) is quantized with NNCF directly, with the recipe ultralytics'
OpenVINO exporter uses (`ultralytics/utils/export/openvino.py`, `torch2openvino`, quantize=8): the
MIXED preset (symmetric weights, asymmetric activations); the detection head's own operations (its
scope `<head>/...` and a YOLO head's DFL) and every Sigmoid kept in float; and for RT-DETR NNCF's
TRANSFORMER model type (SmoothQuant, and no quantizers where transformers lose accuracy) — without it,
RT-DETR-L's INT8 scored 0.0002 mAP (ultralytics PR #26191). Unlike ultralytics, calibration does not
need a labelled data.yaml: the pictures are the user's own (`--calibration DIR`, else the run's first
pictures, or frames spread across the run's own video files), letterboxed exactly as inference
letterboxes them (runtime.letterbox / to_input), whatever their size or channel count.

The calibration set is named by its content (`Calibration.digest`): the quantized export is cached
under the fp32 export's key plus that digest, so other pictures (or another video, or other frames of
it) make another export and the same ones reuse it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError, DetectError, ExportError, InputError
from detect_cli.models import no_openvino_telemetry, quiet_stdout
from detect_cli.runtime import letterbox, to_input
from detect_cli.sources import (
    IMAGE_SUFFIXES,
    ImageInput,
    VideoInput,
    check_regular,
    decode_image,
    quiet_opencv,
    read_file,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CALIBRATION = 300  # pictures, as NNCF's own default subset (fewer when fewer exist)
Note = Callable[[str], None]


class CalibrationError(BadOptionError):
    """No usable calibration pictures (an empty or unreadable folder, or a run without pictures)."""


@dataclass(frozen=True, slots=True)
class VideoFrames:
    """Frames of one local video file chosen for calibration, by their index in the video."""

    path: str
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Calibration:
    """The pictures an INT8 model is calibrated on: local files, in order, and frames of local videos,
    at most `DEFAULT_CALIBRATION` in all, and where they came from (said to the user and kept in the
    export's manifest)."""

    files: tuple[str, ...]
    origin: str
    videos: tuple[VideoFrames, ...] = ()
    # Files with a picture's name that are not pictures to read (a FIFO, a broken link or a link
    # loop), each with why: said when the pictures are read, with those that cannot be decoded.
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        """The calibration set by content: sha256 over each picture's sha256, in order, then each
        video's sha256 and the indexes of its frames (names and timestamps aside), so the same pictures
        or frames anywhere give the same export."""
        outer = hashlib.sha256()
        for name in self.files:
            outer.update(_file_sha256(name, "picture"))
        for video in self.videos:  # none for a set of pictures: its digest is as it always was
            outer.update(b"video" + _file_sha256(video.path, "video"))
            outer.update(",".join(map(str, video.indexes)).encode())
        return outer.hexdigest()


def _file_sha256(name: str, kind: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return hashlib.file_digest(f, "sha256").digest()
    except OSError as e:
        raise CalibrationError(f"cannot read calibration {kind} {name}: {e.strerror or e}") from e


def count_pictures(n: int, kind: str = "picture") -> str:
    """'1 picture', '3 pictures' ('1 frame', '3 frames')."""
    return f"{n} {kind}" if n == 1 else f"{n} {kind}s"


def _not_a_file(path: Path) -> str | None:
    """Why `path` (named as a picture) is not a file to read, else None. Nothing is opened: a FIFO
    would block the read."""
    try:
        mode = path.stat().st_mode  # through a link, to what it names
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        if e.errno == errno.ENOENT and path.is_symlink():
            return "a broken symbolic link"
        return f"cannot read it: {e.strerror or e}"
    if stat.S_ISREG(mode):
        return None
    return "a FIFO, not a file" if stat.S_ISFIFO(mode) else "not a regular file"


def _pictures_in(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files with a picture's name under `folder`, sorted (a link to a file is read as the file),
    and those left out, each with why; sub-folders are searched, not followed through links."""
    found: list[Path] = []
    left_out: list[tuple[str, str]] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        if path.is_dir() and not path.is_symlink():
            continue  # a folder named like a picture: searched, as the others are
        why = _not_a_file(path)
        if why is None:
            found.append(path)
        else:
            left_out.append((str(path), why))
    return found, left_out


def from_folder(folder: Path, limit: int = DEFAULT_CALIBRATION) -> Calibration:
    """`--calibration DIR`: its first `limit` pictures (sorted by path, sub-folders included), and the
    files named as pictures that cannot be read as files (left out, said when quantizing);
    CalibrationError (exit 2) when it is not a folder or holds none."""
    if not folder.is_dir():
        raise CalibrationError(f"--calibration {folder}: not a folder of pictures")
    try:
        found, left_out = _pictures_in(folder)
    except OSError as e:
        raise CalibrationError(f"--calibration {folder}: cannot list it: {e.strerror or e}") from e
    if not found:
        unreadable = f"; left out: {left_out[0][0]} ({left_out[0][1]})" if left_out else ""
        if len(left_out) > 1:
            unreadable += f" and {len(left_out) - 1} more"
        raise CalibrationError(
            f"--calibration {folder} holds no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}){unreadable}: "
            "INT8 needs a few hundred pictures like the ones it will see"
        )
    chosen = found[:limit]
    return Calibration(
        tuple(str(p) for p in chosen), f"{count_pictures(len(chosen))} of {folder}", left_out=tuple(left_out)
    )


def from_inputs(items: Sequence[ImageInput | VideoInput], limit: int = DEFAULT_CALIBRATION) -> Calibration:
    """The run's own inputs: its first `limit` pictures, or (for videos) `limit` frames in all spread
    evenly across each video's length (`spread`). Local files only: URLs, streams and webcams are not
    read twice. CalibrationError (exit 2) when the run has nothing on disk to calibrate on."""
    usable = [i for i in items if i.path is not None and i.error is None]
    local = [str(i.path) for i in usable if isinstance(i, ImageInput)][:limit]
    videos = [str(i.path) for i in usable if isinstance(i, VideoInput)]
    frames = spread(videos, limit - len(local)) if videos and len(local) < limit else ()
    if local or frames:
        said = [f"the run's first {count_pictures(len(local))}"] if local else []
        if frames:
            count = sum(len(v.indexes) for v in frames)
            said.append(f"{count} frames spread across {_videos_said(frames)}")
        return Calibration(tuple(local), " and ".join(said), frames)
    if videos:
        raise CalibrationError(
            f"--precision int8 calibrates on the run's own videos and none of them can be decoded "
            f"({', '.join(videos[:3])}{', …' if len(videos) > 3 else ''}): pass --calibration DIR"
        )
    if any(isinstance(i, VideoInput) for i in items):
        raise CalibrationError(
            "--precision int8 calibrates on the run's own video files, and streams, webcams and URLs "
            "cannot be read twice: pass --calibration DIR (a folder of pictures like the ones it will see)"
        )
    raise CalibrationError(
        "--precision int8 calibrates on the run's own pictures and this run has none on disk: "
        "pass --calibration DIR (a folder of pictures like the ones it will see)"
    )


def _videos_said(frames: Sequence[VideoFrames]) -> str:
    return Path(frames[0].path).name if len(frames) == 1 else f"{len(frames)} videos"


def spread(videos: Iterable[str], limit: int) -> tuple[VideoFrames, ...]:
    """`limit` frames in all from the local `videos`, shared equally between them (a short video's
    unused share goes to the others), each video's spread evenly across its length: the middle frame
    of each of its equal parts, never just its opening seconds, which are rarely typical. A video
    whose frame count cannot be read (not a video, unreadable) is left out."""
    counts = {path: _frame_count(path) for path in videos}
    counts = {path: n for path, n in counts.items() if n > 0}
    shares = dict.fromkeys(counts, 0)
    left = limit
    while left > 0 and (room := [p for p in shares if shares[p] < counts[p]]):
        each, extra = divmod(left, len(room))
        for rank, path in enumerate(room):
            take = min(each + (rank < extra), counts[path] - shares[path])
            shares[path] += take
            left -= take
    return tuple(
        VideoFrames(path, tuple((2 * j + 1) * counts[path] // (2 * k) for j in range(k)))
        for path, k in shares.items()
        if k
    )


def _frame_count(path: str) -> int:
    """The frame count a video's header gives (0 when it cannot be opened or gives none)."""
    try:
        check_regular(Path(path), "video")  # never a FIFO or a device, which FFmpeg would wait on
    except DetectError:
        return 0
    cv2 = quiet_opencv()
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
    finally:
        cap.release()
    return int(count) if 0 < count < 2**31 else 0


# --- the calibration pictures as NNCF reads them ----------------------------------------------------


class Pictures:
    """The calibration pictures and video frames, letterboxed as inference does (a square `imgsz`;
    RT-DETR stretched, YOLO padded), read again on each pass NNCF makes (so 300 pictures are never held
    at once). Pictures or frames that cannot be read are skipped (`skipped` names them); `checked`
    reads each once first so that none left is an error."""

    def __init__(
        self, files: Sequence[str], imgsz: int, stretch: bool, videos: Sequence[VideoFrames] = ()
    ) -> None:
        # Each entry: a picture file (frame None), or a video file and the index of one of its frames.
        self.entries: list[tuple[str, int | None]] = [(f, None) for f in files]
        self.entries += [(v.path, i) for v in videos for i in v.indexes]
        self.imgsz = imgsz
        self.stretch = stretch
        self.skipped: list[tuple[str, str]] = []
        self.passes = 0

    def _read(self) -> Iterator[tuple[tuple[str, int | None], np.ndarray | None, str]]:
        """Each entry with its letterboxed square, or None and why it cannot be read. A video is opened
        once for its frames in a row; its frames are decoded as a run decodes them (OpenCV's FFmpeg
        reader, BGR), seeking to each instead of decoding the whole video on every pass."""
        cv2 = quiet_opencv()
        cap, opened = None, None
        try:
            for entry in self.entries:
                name, frame = entry
                try:
                    if frame is None:
                        image = decode_image(read_file(Path(name))[0])  # grey, RGBA, 16-bit: 8-bit BGR
                    else:
                        if opened != name:
                            if cap is not None:
                                cap.release()
                            cap, opened = cv2.VideoCapture(name, cv2.CAP_FFMPEG), name
                        image = _frame(cap, frame)
                    yield entry, letterbox(image, self.imgsz, self.stretch)[0], ""
                except DetectError as e:
                    yield entry, None, str(e)
        finally:
            if cap is not None:
                cap.release()

    def checked(self) -> Pictures:
        good = []
        for entry, square, why in self._read():
            if square is None:
                self.skipped.append((entry[0] if entry[1] is None else f"{entry[0]} frame {entry[1]}", why))
            else:
                good.append(entry)
        self.entries = good
        return self

    def __len__(self) -> int:
        return len(self.entries)

    def said(self) -> str:
        """How many there are, as a user reads it: '300 pictures', '1 frame', '12 pictures and 288 frames'."""
        frames = sum(frame is not None for _, frame in self.entries)
        parts = [count_pictures(len(self) - frames)] if len(self) > frames else []
        parts += [count_pictures(frames, "frame")] if frames else []
        return " and ".join(parts) or count_pictures(0)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.passes += 1
        for (name, _), square, why in self._read():
            if square is None:  # readable when checked, not now (changed since): NNCF stops, said once
                raise InputError(f"{name}: {why}")
            yield square


def _frame(cap: Any, index: int) -> np.ndarray:
    cv2 = quiet_opencv()
    if not cap.isOpened():
        raise InputError("not a readable video")
    if cap.get(cv2.CAP_PROP_POS_FRAMES) != index:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    if not ok or image is None:
        raise InputError("cannot decode this frame (truncated or corrupt video)")
    return image


def ignored_scope(model: Any) -> Any:
    """ultralytics' ignored scope for a detection head: every Sigmoid, and the operations of the last
    Sigmoid's module (the head: YOLO's Detect, RT-DETR's RTDETRDecoder) in its own forward or its DFL."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(
        names=[
            op.get_friendly_name()
            for op in ops
            if op.get_type_name() == "Sigmoid"
            or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
        ]
    )


def import_nncf() -> Any:
    """nncf, imported without torch's note about CUDA that importing it prints on a CPU-only machine,
    and without its telemetry (`no_openvino_telemetry`)."""
    no_openvino_telemetry()
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import nncf

    return nncf


@contextlib.contextmanager
def _nncf_quiet() -> Iterator[None]:
    """NNCF's INFO lines off the terminal, and its progress bars on stderr (stdout holds `--json`)."""
    import nncf

    nncf.set_log_level(logging.ERROR)
    with quiet_stdout():
        yield


def quantize_openvino(
    xml: Path, target: Path, pictures: Pictures, transformer: bool, note: Note | None = None
) -> Path:
    """Quantize the OpenVINO IR `xml` to INT8 on `pictures` (already `checked`) and save it as
    `target` (.xml and .bin, and metadata.yaml copied beside it). `transformer`: RT-DETR (NNCF's
    TRANSFORMER model type). ExportError when NNCF fails; OSError (a full disk) passes through."""
    nncf = import_nncf()
    import openvino as ov

    model = ov.Core().read_model(str(xml))

    def transform(square: np.ndarray) -> np.ndarray:
        return to_input(square)

    try:
        with _nncf_quiet():
            quantized = nncf.quantize(
                model,
                nncf.Dataset(pictures, transform),
                preset=nncf.QuantizationPreset.MIXED,
                model_type=nncf.ModelType.TRANSFORMER if transformer else None,
                subset_size=len(pictures),
                ignored_scope=ignored_scope(model),
            )
    except (KeyboardInterrupt, OSError, MemoryError):
        raise
    except Exception as e:  # NNCF raises many types; each means this model could not be quantized
        raise ExportError(f"INT8 quantization failed: {type(e).__name__}: {e}") from e
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        ov.save_model(quantized, str(target), compress_to_fp16=False)
    except RuntimeError as e:  # OpenVINO says a failed write (a full disk) as a RuntimeError
        raise ExportError(f"cannot write the INT8 export: {e}") from e
    if (meta := xml.parent / "metadata.yaml").is_file():
        shutil.copyfile(meta, target.parent / "metadata.yaml")
    if note:
        note(f"quantized on {pictures.said()} in {pictures.passes} passes")
    return target
