"""Option groups: a set of options declared once, as a dataclass whose fields carry their Typer options,
and shared by every command that takes it.

A command parameter annotated with a group (`settings: ModelArgs`, keyword-only) is shown to Typer as
that group's fields, and the parsed values are handed to the command as one `ModelArgs`. Adding a model
option is one field here, and every command has it.

No `from __future__ import annotations` in the cli package: Typer reads these annotations at run time.
"""

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from detect_cli.cli.options import (
    DEFAULT_MAX_PIXELS_TEXT,
    BackendChoice,
    BackendOpt,
    Batch,
    CalibrationDir,
    Classes,
    Conf,
    Device,
    Executor,
    ExecutorOpt,
    ExistOk,
    Formats,
    Half,
    Imgsz,
    Iou,
    Json,
    MaxDet,
    MaxFrames,
    MaxPixels,
    Nms,
    OfflineFallback,
    Out,
    PrecisionOpt,
    Quiet,
    RayAddress,
    RayWorkers,
    Reconnects,
    Recursive,
    Resume,
    RetryFailed,
    Save,
    SaveFrames,
    SaveVideo,
    UrlTimeout,
    VidStride,
)

if TYPE_CHECKING:
    from detect_cli.backends import Plan
    from detect_cli.models import PredictOptions
    from detect_cli.quantize import Calibration

F = TypeVar("F", bound=Callable[..., Any])


def grouped(fn: F) -> F:
    """Flatten the option-group parameters of a command for Typer, and rebuild them before it runs."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in signature.parameters.values():
        kind = hints.get(p.name)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            field_hints = typing.get_type_hints(kind, include_extras=True)
            names = [f.name for f in dataclasses.fields(kind)]
            groups[p.name] = (kind, names)
            for f in dataclasses.fields(kind):
                params.append(
                    inspect.Parameter(
                        f.name,
                        inspect.Parameter.KEYWORD_ONLY,
                        default=f.default,
                        annotation=field_hints[f.name],
                    )
                )
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation)))
    names = [p.name for p in params]
    assert len(names) == len(set(names)), f"{fn.__name__}: option groups repeat a name"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name, (kind, fields) in groups.items():
            kwargs[name] = kind(**{f: kwargs.pop(f) for f in fields})
        return fn(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class ModelArgs:
    """How the model runs: every inference command takes these."""

    conf: Conf = 0.25
    iou: Iou = None
    nms: Nms = False
    imgsz: Imgsz = 640
    device: Device = "auto"
    classes: Classes = None
    max_det: MaxDet = 300
    half: Half = False
    backend: BackendOpt = BackendChoice.auto
    precision: PrecisionOpt = None
    offline_fallback: OfflineFallback = False
    calibration: CalibrationDir = None

    def settle(self, executor: str = "local") -> "tuple[PredictOptions, Plan]":
        """The checked options and the backend plan, decided once (raises the project's errors)."""
        from detect_cli import backends
        from detect_cli.errors import BadOptionError
        from detect_cli.models import PredictOptions, class_tokens

        if self.classes is not None:
            class_tokens(self.classes)  # an empty list is refused before any model loads
        if self.imgsz % 32:
            raise BadOptionError(f"--imgsz {self.imgsz} is not a multiple of 32")
        plan = backends.plan(
            self.backend.value,
            self.device,
            self.precision.value if self.precision else None,
            self.half,
            resolve_device=executor == "local",
            offline_fallback=self.offline_fallback,
            calibration=self._calibration(),
        )
        options = PredictOptions(
            conf=self.conf,
            iou=0.7 if self.iou is None else self.iou,
            imgsz=self.imgsz,
            device=plan.device,
            max_det=self.max_det,
            half=plan.precision == "fp16",
            nms=self.nms,
        )
        return options, plan

    def _calibration(self) -> "Calibration | None":
        from detect_cli.quantize import from_folder

        return from_folder(self.calibration) if self.calibration is not None else None


@dataclasses.dataclass(frozen=True)
class InputArgs:
    """How SOURCE arguments are read."""

    recursive: Recursive = True
    url_timeout: UrlTimeout = 15.0
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS_TEXT  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class OutputArgs:
    """Where results go, and how much is said on the terminal."""

    out: Out = None
    exist_ok: ExistOk = False
    quiet: Quiet = False


@dataclasses.dataclass(frozen=True)
class ImageArgs:
    """`detect image`: outputs, batching, resuming and where the batch runs."""

    save: Save = True
    formats: Formats = None
    batch: Batch = 1
    json_out: Json = False
    resume: Resume = False
    retry_failed: RetryFailed = False
    executor: ExecutorOpt = Executor.local
    ray_address: RayAddress = None
    ray_workers: RayWorkers = None

    @property
    def on_ray(self) -> bool:
        return self.executor is Executor.ray or self.ray_address is not None or self.ray_workers is not None


@dataclasses.dataclass(frozen=True)
class StreamArgs:
    """Which frames of a video are used (`detect video`, and `detect compare` on a video)."""

    vid_stride: VidStride = 1
    max_frames: MaxFrames = None
    reconnects: Reconnects = 3


@dataclasses.dataclass(frozen=True)
class VideoArgs:
    """`detect video`: outputs and batching."""

    save: SaveVideo = True
    save_frames: SaveFrames = False
    formats: Formats = None
    batch: Batch = 1
    json_out: Json = False


def job_fields(
    sources: list[str],
    ref: Any,
    run_name: str,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    formats: Any,
    batch: int,
    executor: str = "local",
) -> dict[str, Any]:
    """The fields every inference job (jobs.common.Job) takes, from the shared option groups; the
    model options checked and the backend planned once (`ModelArgs.settle`)."""
    from detect_cli.cli.options import output_formats

    options, plan = settings.settle(executor)
    return {
        "sources": tuple(sources),
        "model": ref,
        "options": options,
        "plan": plan,
        "out": output.out,
        "run_name": run_name,
        "exist_ok": output.exist_ok,
        "formats": output_formats(formats),
        "recursive": inputs.recursive,
        "url_timeout": inputs.url_timeout,
        "max_pixels": inputs.max_pixels,
        "batch": batch,
        "classes": settings.classes,
        "iou_given": settings.iou is not None,
    }


__all__ = [
    "ImageArgs",
    "InputArgs",
    "ModelArgs",
    "OutputArgs",
    "StreamArgs",
    "VideoArgs",
    "grouped",
    "job_fields",
]
