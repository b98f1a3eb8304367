"""Options shared by the inference commands, and the one place errors become a line and an exit code.

No `from __future__ import annotations` in the cli package: Typer reads these annotations at run time.
"""

import functools
import os
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from detect_cli.errors import DetectError, ExitCode


class OutputFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    txt = "txt"
    coco = "coco"


class BackendChoice(str, Enum):
    torch = "torch"
    onnx = "onnx"
    openvino = "openvino"
    auto = "auto"


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class State:
    """Global flags set by the top-level callback."""

    debug: bool = os.environ.get("DETECT_DEBUG", "") not in ("", "0")


F = TypeVar("F", bound=Callable[..., Any])


def say_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def handle_errors(fn: F) -> F:
    """Turn the project's errors (and Ctrl-C, and bugs) into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except DetectError as e:
            if State.debug:
                traceback.print_exc(file=sys.stderr)
            say_error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            say_error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as e:  # a bug: still one line, with the way to get the details
            if State.debug:
                traceback.print_exc(file=sys.stderr)
            say_error(f"unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)")
            raise typer.Exit(ExitCode.CANNOT_RUN) from None

    return wrapper  # type: ignore[return-value]


Sources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Image files, folders, glob patterns ('imgs/*.jpg'), http(s) URLs, or @list.txt (one per line).",
        show_default=False,
    ),
]
Conf = Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum confidence of a detection.")]
Iou = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        show_default=False,
        help="NMS IoU threshold (default 0.7). YOLO only: RT-DETR is NMS-free and ignores it unless --nms.",
    ),
]
Nms = Annotated[
    bool, typer.Option("--nms", help="RT-DETR: apply class-wise NMS at --iou to drop duplicate boxes.")
]
Imgsz = Annotated[int, typer.Option(min=32, max=4096, help="Inference size in pixels (a multiple of 32).")]
Device = Annotated[
    str, typer.Option(help="auto (cuda:0 when available, else cpu), cpu, cuda, cuda:N or mps.")
]
Classes = Annotated[
    str | None,
    typer.Option(help="Only these classes: names or ids, comma-separated ('person,car' or '0,2')."),
]
MaxDet = Annotated[int, typer.Option(min=1, help="Most detections kept per image.")]
Half = Annotated[bool, typer.Option("--half", help="fp16 inference (CUDA only).")]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Output folder (default: detect-runs/<command>, numbered so no run is overwritten).",
        show_default=False,
    ),
]
ExistOk = Annotated[bool, typer.Option("--exist-ok", help="Write into an existing output folder (appends).")]
Save = Annotated[bool, typer.Option("--save/--no-save", help="Write annotated images.")]
Formats = Annotated[
    list[OutputFormat] | None,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Extra outputs, repeatable: csv, txt (YOLO labels), coco (COCO results json). "
        "jsonl is always written.",
        show_default=False,
    ),
]
Recursive = Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")]
Batch = Annotated[
    int,
    typer.Option(
        min=1, max=256, help="Images per model call (on CPU batching does not speed up any backend)."
    ),
]
UrlTimeout = Annotated[float, typer.Option(min=0.1, help="Seconds to wait for a URL before giving up on it.")]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON line per input on stdout (logs go to stderr).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
BackendOpt = Annotated[
    BackendChoice,
    typer.Option(
        "--backend",
        case_sensitive=False,
        envvar="DETECT_BACKEND",
        help="What runs the model: torch, onnx (ONNX Runtime), openvino, or auto (torch on CUDA; on CPU "
        "OpenVINO, else ONNX Runtime when installed, else torch). ONNX/OpenVINO exports are made once and "
        "cached, and checked against torch.",
    ),
]
PrecisionOpt = Annotated[
    PrecisionChoice | None,
    typer.Option(
        "--precision",
        case_sensitive=False,
        show_default=False,
        help="fp32, bf16 (OpenVINO on CPUs that have it) or fp16 (CUDA). Default: the backend's faster "
        "one when its detections match torch, else fp32.",
    ),
]
