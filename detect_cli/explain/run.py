"""`detect explain` (and `detect compare --explain`): each image explained, its picture and its
explain.jsonl line written; a failed image is its own failure record and the run goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli.backends import Plan, exported_kind, load_detector
from detect_cli.errors import BadOptionError, InputError, OutputError
from detect_cli.models import Detector, ModelRef, PredictOptions, warn_about_options
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import stop_on_signals
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    ImageInput,
    discover_images,
    output_file,
    read_image,
    refuse_other_kind,
)
from detect_cli.writers import (
    RUN_FAULTS,
    FileList,
    JsonlWriter,
    atomic_write_bytes,
    remove_listed,
)

if TYPE_CHECKING:
    import numpy as np
from detect_cli.explain.draw import render_explanation
from detect_cli.explain.eigencam import yolo_activation
from detect_cli.explain.hooks import TORCH_ONLY
from detect_cli.explain.results import ImageExplanation
from detect_cli.explain.rtdetr import explain_rtdetr

EXPLAIN_JSONL = "explain.jsonl"
EXPLAIN_FILES = ".explain-files.jsonl"  # what `detect explain` wrote into its folder (writers.FileList)


def explain_image(
    source: str,
    image: np.ndarray,
    rtdetr: Detector,
    yolo: Detector | None = None,
    objects: int = 5,
) -> ImageExplanation:
    height, width = image.shape[:2]
    total, explained = explain_rtdetr(rtdetr, image, objects)
    activation = yolo_activation(yolo, image) if yolo is not None else None
    return ImageExplanation(source, width, height, rtdetr.name, total, explained, activation)


@dataclass(frozen=True, slots=True)
class ExplainRun:
    """What `explain_images` did: the folder, and per image its picture (None when it failed)."""

    out: Path
    pictures: tuple[Path | None, ...]
    failed: int
    interrupted: bool = False
    signum: int | None = None


def picture_path(rel_path: PurePosixPath) -> PurePosixPath:
    """Where an input's picture goes: its output name (sources.names, unique in the run) as .jpg
    (bus.jpg -> bus.jpg, x.png -> x.jpg; x.jpg beside x.png -> x.jpg.jpg and x.png.jpg)."""
    return output_file(rel_path, ".jpg")


def _explain_one(
    item: ImageInput, image: np.ndarray, rtdetr: Detector, yolo: Detector | None, objects: int, out: Path
) -> ImageExplanation:
    """One image explained and its picture written; raises OutputError (or OSError) when the picture
    cannot be written."""
    import cv2

    result = explain_image(item.source, image, rtdetr, yolo, objects)
    rel = picture_path(item.rel_path)
    random = [d.name for d in (rtdetr, yolo) if d is not None and d.ref.untrained]
    picture = render_explanation(image, result, objects, random)
    ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OutputError("cannot encode the picture as JPEG")
    atomic_write_bytes(out / rel, buf.tobytes())
    return replace(result, picture=str(rel))


def explain_images(
    items: Sequence[ImageInput],
    rtdetr: Detector,
    out: Path,
    yolo: Detector | None = None,
    objects: int = 5,
    echo: Callable[[str], None] | None = None,
    on_image: Callable[[ImageExplanation], None] | None = None,
    url_timeout: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stop: threading.Event | None = None,
    fresh: bool = False,
) -> ExplainRun:
    """Explain each input (from `sources.discover_images`) into `out`, a prepared folder: a picture and
    an explain.jsonl line per image. Models come loaded, so `detect compare` can pass its own.

    An image that cannot be read, explained or written is that image's failure record and the run goes
    on; a full disk ends it. When `stop` is set the run ends after the image in hand. `fresh` starts
    explain.jsonl empty (a comparison replacing an earlier one) instead of adding to it."""
    pictures: list[Path | None] = []
    failed = 0
    with JsonlWriter(out / EXPLAIN_JSONL, echo=echo, fresh=fresh) as writer:
        for item in items:
            if stop is not None and stop.is_set():
                break
            try:
                image = read_image(item, url_timeout, max_pixels)
                result = _explain_one(item, image, rtdetr, yolo, objects, out)
            except (InputError, OutputError, OSError) as e:
                if isinstance(e, OSError) and e.errno in RUN_FAULTS:
                    raise OutputError(f"cannot write in {out}: {e.strerror}") from e
                reason = str(e) if isinstance(e, InputError) else f"cannot write its picture: {e}"
                result = ImageExplanation(item.source, 0, 0, rtdetr.name, 0, (), error=reason)
                pictures.append(None)
                failed += 1
            else:
                pictures.append(out / result.picture if result.picture else None)
            writer.write_record(result.to_dict(objects))
            if on_image:
                on_image(result)
    stopped = stop is not None and stop.is_set()
    signum = getattr(stop, "signum", None) if stopped else None
    return ExplainRun(out, tuple(pictures), failed, stopped, signum)


@dataclass(frozen=True)
class ExplainJob:
    """Everything `detect explain` needs, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    compare: ModelRef | None
    options: PredictOptions
    objects: int = 5
    out: Path | None = None
    exist_ok: bool = False
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    offline_fallback: bool = False  # official weights that cannot be fetched: their configs, said loudly


def run_explain(
    job: ExplainJob,
    warn: Callable[[str], None] | None = None,
    echo: Callable[[str], None] | None = None,
    on_image: Callable[[ImageExplanation], None] | None = None,
) -> ExplainRun:
    """Check the models and the plan, load the models (PyTorch: exports expose no attention), and
    explain every image into the run folder."""
    if job.model.family != "rtdetr":
        raise BadOptionError(f"--model {job.model.name} is not an RT-DETR model; explain reads its attention")
    if job.compare is not None and job.compare.family != "yolo":
        raise BadOptionError(f"--compare {job.compare.name} is not a YOLO model (or 'none')")
    if any(exported_kind(r.location) for r in (job.model, job.compare) if r is not None):
        raise BadOptionError(TORCH_ONLY)
    refuse_other_kind(job.sources, "image", "explain")
    exclude = [job.out] if job.out else []
    # Before loading: a wrong path fails fast. Each input named once, uniquely (sources.names).
    items = discover_images(job.sources, exclude=exclude)
    planned = planned_folder(job.out, "explain", job.exist_ok)
    if planned is not None:
        outputs = [planned / EXPLAIN_JSONL, *(planned / picture_path(i.rel_path) for i in items)]
        check_plan(planned, job.sources, items, outputs, record=EXPLAIN_JSONL)
    plan = Plan("torch", job.options.device, offline_fallback=job.offline_fallback)
    rtdetr = load_detector(job.model, job.options, plan, warn=warn)
    if rtdetr.family != "rtdetr":  # a .pt whose name did not say: the loaded weights decide
        raise BadOptionError(f"{job.model.location} holds a YOLO model; explain reads RT-DETR's attention")
    yolo = load_detector(job.compare, job.options, plan, warn=warn) if job.compare else None
    if yolo is not None and yolo.family != "yolo":
        raise BadOptionError(f"{yolo.ref.location} holds an RT-DETR model; --compare takes a YOLO model")
    warn_about_options([rtdetr, yolo], False, warn)
    with run_folder(job.out, "explain", job.exist_ok, record=EXPLAIN_JSONL) as out, stop_on_signals() as stop:
        # --exist-ok replaces an earlier explain run: what it listed is removed (never a file it did
        # not write), explain.jsonl starts empty, and this run lists its own files before writing them.
        if job.exist_ok:
            remove_listed(out, EXPLAIN_FILES)
        with FileList(out, EXPLAIN_FILES) as files:
            files.add(out / EXPLAIN_JSONL, *(out / picture_path(i.rel_path) for i in items))
            return explain_images(
                items,
                rtdetr,
                out,
                yolo,
                job.objects,
                echo,
                on_image,
                job.url_timeout,
                job.max_pixels,
                stop,
                fresh=job.exist_ok,
            )
