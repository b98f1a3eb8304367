"""Options shared by the inference commands, and the one place errors become a line and an exit code.

No `from __future__ import annotations` in the cli package: Typer reads these annotations at run time.
"""

import contextlib
import functools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
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


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class BackendChoice(str, Enum):
    torch = "torch"
    onnx = "onnx"
    openvino = "openvino"
    auto = "auto"


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    int8 = "int8"


def debug_from_env() -> bool:
    return os.environ.get("DETECT_DEBUG", "") not in ("", "0")


def debug_asked(args: Any, kwargs: Any) -> bool:
    """`detect --debug …` (the root command's parsed option, read from the command's context) or
    DETECT_DEBUG=1: passed down as a value, never kept in global state."""
    # Typer hands over click's own Context (typer.Context is a subclass used only for annotations).
    ctx = next((a for a in (*args, *kwargs.values()) if callable(getattr(a, "find_root", None))), None)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug")) or debug_from_env()


F = TypeVar("F", bound=Callable[..., Any])


def say_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM outside a run loop (loading a model, downloading a video) unwinds like Ctrl-C, so
    temporary files and folders are removed on the way out; inside one, the loop's own handler takes
    over (see detect_cli.signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from detect_cli.signals import Interrupted

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def handle_errors(fn: F) -> F:
    """Turn the project's errors (and Ctrl-C, and bugs) into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _sigterm_interrupts():
            return _call(*args, **kwargs)

    def _call(*args: Any, **kwargs: Any) -> Any:
        debug = debug_asked(args, kwargs)
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except DetectError as e:
            if debug:
                traceback.print_exc(file=sys.stderr)
            say_error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt as e:  # a second Ctrl-C (or SIGTERM), or one before the run began
            from detect_cli.signals import exit_code

            say_error("interrupted")
            raise typer.Exit(exit_code(getattr(e, "signum", None))) from None
        except Exception as e:  # a bug: still one line, with the way to get the details
            if debug:
                traceback.print_exc(file=sys.stderr)
            say_error(f"unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)")
            raise typer.Exit(ExitCode.CANNOT_RUN) from None

    return wrapper  # type: ignore[return-value]


def output_formats(formats: "list[OutputFormat] | None") -> tuple[str, ...]:
    """The formats asked for, jsonl (always written) first, each once."""
    return tuple(dict.fromkeys(["jsonl", *(f.value for f in formats or [])]))


def json_printer() -> Callable[[str], None]:
    """Writes result lines to the stdout of the moment the command started: writers may call it from a
    background thread while something else briefly redirects sys.stdout."""
    stream = sys.stdout

    def print_json_line(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return print_json_line


def exit_code_for(failed: int, interrupted: bool, signum: int | None = None) -> int:
    """0 all done, 1 some inputs failed, 130 stopped by Ctrl-C, 143 by SIGTERM."""
    if interrupted:
        from detect_cli.signals import exit_code

        return exit_code(signum)
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


Sources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Image files, folders, glob patterns ('imgs/*.jpg'), http(s) URLs, or @list.txt (one per line).",
        show_default=False,
    ),
]
ModelName = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="A model name (rtdetr-l, rtdetr-x, yolo11n…yolo11x), or a path to a .pt, "
        "a .yaml model config, .onnx or an exported model folder.",
    ),
]
Conf = Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum confidence of a detection.")]
Iou = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        show_default=False,
        help="NMS IoU threshold (default 0.7). NMS-free models (RT-DETR, YOLO26) ignore it unless --nms.",
    ),
]
Nms = Annotated[
    bool,
    typer.Option(
        "--nms",
        help="NMS-free models (RT-DETR, YOLO26): apply class-wise NMS at --iou to drop duplicate boxes.",
    ),
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
OfflineFallback = Annotated[
    bool,
    typer.Option(
        "--offline-fallback",
        help="When an official model's weights cannot be downloaded, build it from its YAML config instead "
        "of stopping: random weights, so speed and memory are real and boxes are meaningless (warned). "
        "Weights already in the cache, or a local .pt, are used as usual.",
    ),
]
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
UrlTimeout = Annotated[
    float,
    typer.Option(min=0.1, help="Seconds a URL may take in all (connecting and the whole download)."),
]


def _pixels(text: str) -> int:
    from detect_cli.sources import parse_pixels

    try:
        return parse_pixels(str(text))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        parser=_pixels,
        metavar="N",
        help="Largest picture (or video frame) to decode, in pixels: 100M, 250M, 1G… Larger ones are "
        "refused from their header, unread, and recorded as failed.",
    ),
]
DEFAULT_MAX_PIXELS_TEXT = "100M"
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON line per input on stdout (logs go to stderr).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
VideoSources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Video files (mp4, avi, mov, mkv, webm…), folders of videos, http(s) URLs to video files, "
        "rtsp/rtmp/http streams, a webcam index (0), or @list.txt; processed one after another.",
        show_default=False,
    ),
]
VidStride = Annotated[int, typer.Option("--vid-stride", min=1, help="Process every Nth frame.")]
MaxFrames = Annotated[
    int | None,
    typer.Option(
        "--max-frames", min=1, help="Stop after N processed frames of each video.", show_default=False
    ),
]
SaveVideo = Annotated[bool, typer.Option("--save/--no-save", help="Write the annotated video.")]
SaveFrames = Annotated[
    bool, typer.Option("--save-frames", help="Also write each processed frame, annotated, as a .jpg.")
]
Reconnects = Annotated[
    int, typer.Option(min=0, help="Times in a row to reopen a live stream or webcam that stops sending.")
]


Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Finish the run in --out: skip inputs it already recorded (a file changed since is redone).",
    ),
]
RetryFailed = Annotated[
    bool, typer.Option("--retry-failed", help="Like --resume, and also redo the inputs that failed.")
]
ExecutorOpt = Annotated[
    Executor,
    typer.Option(
        "--executor",
        case_sensitive=False,
        help="Where the batch runs: local (this process) or ray (a Ray cluster; needs the ray extra).",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join (implies --executor ray; default $RAY_ADDRESS, else a local Ray starts).",
        show_default=False,
    ),
]
RayWorkers = Annotated[
    int | None,
    typer.Option(
        "--ray-workers",
        min=1,
        help="Ray workers, each with its own copy of the model (implies --executor ray; "
        "default: one per GPU, or per CPU).",
        show_default=False,
    ),
]


def resume_command(ctx: typer.Context, out: Path) -> str:
    """The command line that finishes this run: the same arguments, with --out and --resume, run from
    this folder (relative paths and the input keys depend on it), shell-quoted so that it works pasted."""
    import shlex

    sources: list[str] = []
    words: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            sources += [str(v) for v in value or ()]
            continue
        opts = getattr(param, "opts", [])
        if param.name in ("out", "resume", "exist_ok") or value is None or _is_default(ctx, param, value):
            continue
        if isinstance(value, bool):
            secondary = getattr(param, "secondary_opts", [])
            flag = opts[0] if value else (secondary[0] if secondary else None)
            words += [flag] if flag else []
        elif isinstance(value, (list, tuple)):
            for v in value:
                words += [opts[0], str(v.value if isinstance(v, Enum) else v)]
        else:
            words += [opts[0], str(value.value if isinstance(value, Enum) else value)]
    words += ["--out", str(out), "--resume"]
    # A source that starts with "-" would be read as an option: the sources then go last, after "--".
    if any(v.startswith("-") for v in sources):
        words = [*words, "--", *sources]
    else:
        words = [*sources, *words]
    return f"cd {shlex.quote(os.getcwd())} && {shlex.join([*ctx.command_path.split(), *words])}"


def _is_default(ctx: typer.Context, param: Any, value: Any) -> bool:
    """Whether `value` is the option's default, also where the default is given as text the option
    parses (`--max-pixels 100M`)."""
    if value == param.default:
        return True
    if not isinstance(param.default, str) or isinstance(value, str):
        return False
    try:  # the option's own conversion, without its callback
        return bool(value == param.get_runtime_param().coerce(param.default, param=param, ctx=ctx))
    except Exception:  # a default it does not read (or another Typer): repeating it is harmless
        return False


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
        help="fp32, bf16 (OpenVINO on CPUs that have it), fp16 (CUDA) or int8 (OpenVINO, quantized once "
        "on --calibration pictures or the run's first 300). Default: the backend's faster float one when "
        "its detections match torch, else fp32; never int8.",
    ),
]
CalibrationDir = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        metavar="DIR",
        show_default=False,
        help="With --precision int8: the pictures to calibrate on (its first 300, sorted). Default: the "
        "run's own first 300 pictures.",
    ),
]
