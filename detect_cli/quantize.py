"""INT8 for OpenVINO: post-training quantization with NNCF, calibrated on the user's own pictures.

The fp32 OpenVINO export (backends/export.py) is quantized with NNCF directly, with the recipe ultralytics'
OpenVINO exporter uses (`ultralytics/utils/export/openvino.py`, `torch2openvino`, quantize=8): the
MIXED preset (symmetric weights, asymmetric activations); the detection head's own operations (its
scope `<head>/...` and a YOLO head's DFL) and every Sigmoid kept in float; and for RT-DETR NNCF's
TRANSFORMER model type (SmoothQuant, and no quantizers where transformers lose accuracy) — without it,
RT-DETR-L's INT8 scored 0.0002 mAP (ultralytics PR #26191). Unlike ultralytics, calibration does not
need a labelled data.yaml: the pictures are the user's own (`--calibration DIR`, else the run's first
pictures), letterboxed exactly as inference letterboxes them (runtime.letterbox / to_input), whatever
their size or channel count.

The calibration set is named by its content (`Calibration.digest`): the quantized export is cached
under the fp32 export's key plus that digest, so other pictures make another export and the same
pictures reuse it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError, DetectError, ExportError
from detect_cli.models import quiet_stdout
from detect_cli.runtime import letterbox, to_input
from detect_cli.sources import IMAGE_SUFFIXES, ImageInput, decode_image, read_file

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CALIBRATION = 300  # pictures, as NNCF's own default subset (fewer when fewer exist)
Note = Callable[[str], None]


class CalibrationError(BadOptionError):
    """No usable calibration pictures (an empty or unreadable folder, or a run without pictures)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The pictures an INT8 model is calibrated on: local files, in order, at most `DEFAULT_CALIBRATION`,
    and where they came from (said to the user and kept in the export's manifest)."""

    files: tuple[str, ...]
    origin: str
    # Files with a picture's name that are not pictures to read (a FIFO, a broken link or a link
    # loop), each with why: said when the pictures are read, with those that cannot be decoded.
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        """The calibration set by content: sha256 over each picture's sha256, in order (names and
        timestamps aside), so the same pictures anywhere give the same export."""
        outer = hashlib.sha256()
        for name in self.files:
            try:
                with open(name, "rb") as f:
                    outer.update(hashlib.file_digest(f, "sha256").digest())
            except OSError as e:
                raise CalibrationError(f"cannot read calibration picture {name}: {e.strerror or e}") from e
        return outer.hexdigest()


def count_pictures(n: int) -> str:
    """'1 picture', '3 pictures'."""
    return f"{n} picture" if n == 1 else f"{n} pictures"


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
        tuple(str(p) for p in chosen), f"{count_pictures(len(chosen))} of {folder}", tuple(left_out)
    )


def from_inputs(items: Sequence[ImageInput], limit: int = DEFAULT_CALIBRATION) -> Calibration:
    """The run's own first `limit` pictures (local files only: URLs are not fetched twice)."""
    local = [str(i.path) for i in items if i.path is not None and i.error is None][:limit]
    if not local:
        raise CalibrationError(
            "--precision int8 calibrates on the run's own pictures and this run has none on disk: "
            "pass --calibration DIR (a folder of pictures like the ones it will see)"
        )
    return Calibration(tuple(local), f"the run's first {count_pictures(len(local))}")


# --- the calibration pictures as NNCF reads them ----------------------------------------------------


class Pictures:
    """The calibration pictures, letterboxed as inference does (a square `imgsz`; RT-DETR stretched,
    YOLO padded), read again on each pass NNCF makes (so 300 pictures are never held at once).
    Pictures that cannot be read are skipped (`skipped` names them); `checked` reads each once first
    so that none left is an error."""

    def __init__(self, files: Sequence[str], imgsz: int, stretch: bool) -> None:
        self.files = list(files)
        self.imgsz = imgsz
        self.stretch = stretch
        self.skipped: list[tuple[str, str]] = []
        self.passes = 0

    def _read(self, name: str) -> np.ndarray:
        data, _ = read_file(Path(name))
        image = decode_image(data)  # grey, RGBA and 16-bit become 8-bit BGR, as for inference
        return letterbox(image, self.imgsz, self.stretch)[0]

    def checked(self) -> Pictures:
        good = []
        for name in self.files:
            try:
                self._read(name)
            except DetectError as e:
                self.skipped.append((name, str(e)))
            else:
                good.append(name)
        self.files = good
        return self

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.passes += 1
        for name in self.files:
            yield self._read(name)


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
    """nncf, imported without torch's note about CUDA that importing it prints on a CPU-only machine."""
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
    import nncf
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
        note(f"quantized on {count_pictures(len(pictures))} in {pictures.passes} passes")
    return target
