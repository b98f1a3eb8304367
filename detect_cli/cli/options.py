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

# The panels of `--help`: options grouped by what they are about, so that the help reads at 80 columns.
MODEL = "Model"
INPUTS = "Inputs"
OUTPUT = "Output"
RUN = "Run"


class OutputFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    txt = "txt"
    coco = "coco"
    mot = "mot"  # MOTChallenge track results: detect video --track only


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
def _signals_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM outside a run loop (loading or exporting a model, INT8 calibration,
    downloading a video) unwind at once, so temporary files and folders are removed on the way out;
    inside one, the loop's own handler takes over (see detect_cli.signals).

    Installed for SIGINT too, not left to Python's default: a process started with SIGINT ignored (a
    background job of a script, `cmd &`) inherits that, and Python then never raises KeyboardInterrupt,
    so a Ctrl-C or `kill -INT` during a first export was ignored while the run loop (which installs its
    own handler) honoured it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from detect_cli.signals import SIGNALS, Interrupted

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, raise_interrupted) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def handle_errors(fn: F) -> F:
    """Turn the project's errors (and Ctrl-C, and bugs) into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _signals_interrupt():
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
            from detect_cli.signals import deferred, exit_code

            with deferred():  # one more Ctrl-C now would end in a traceback instead of this line
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
    """Writes result lines on stdout (ui.StdoutLines: a reader that leaves stops the run as SIGPIPE)."""
    from detect_cli.ui import StdoutLines

    return StdoutLines()


def exit_code_for(failed: int, interrupted: bool, signum: int | None = None) -> int:
    """0 all done, 1 some inputs failed, 130 stopped by Ctrl-C, 143 by SIGTERM."""
    if interrupted:
        from detect_cli.signals import exit_code

        return exit_code(signum)
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


# Upper bounds of the number options without a natural one: far beyond any real use, and within what
# the libraries they reach accept (a thread wait, a socket timeout, OpenCV's open timeout in ms as a
# 32-bit int). Typer refuses what is outside, 'inf' and 'nan' included, with a usage error (exit 2).
MAX_URL_TIMEOUT_S = 3600.0
MAX_DETECTIONS = 10_000
MAX_VID_STRIDE = 100_000
MAX_FRAMES = 1_000_000_000
MAX_RECONNECTS = 1_000
MAX_RAY_WORKERS = 4_096

Sources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Images, folders, globs ('imgs/*.jpg'), http(s) URLs or @list.txt.",
        show_default=False,
    ),
]
ModelName = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME",
        help="A name (see detect models) or a .pt, .yaml, .onnx or export path.",
        rich_help_panel=MODEL,
    ),
]
Conf = Annotated[
    float,
    typer.Option(min=0.0, max=1.0, metavar="0..1", help="Minimum confidence.", rich_help_panel=MODEL),
]
Iou = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        show_default=False,
        metavar="0..1",
        help="NMS IoU (0.7); NMS-free models ignore it unless --nms.",
        rich_help_panel=MODEL,
    ),
]
Nms = Annotated[
    bool,
    typer.Option(
        "--nms",
        help="Class-wise NMS at --iou after an NMS-free model.",
        rich_help_panel=MODEL,
    ),
]
Imgsz = Annotated[
    int,
    typer.Option(
        min=32, max=4096, metavar="PIXELS", help="Inference size, a multiple of 32.", rich_help_panel=MODEL
    ),
]
Device = Annotated[
    str, typer.Option(metavar="NAME", help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=MODEL)
]
Classes = Annotated[
    str | None,
    typer.Option(metavar="LIST", help="Only these: names or ids ('person,car').", rich_help_panel=MODEL),
]
MaxDet = Annotated[
    int,
    typer.Option(
        min=1, max=MAX_DETECTIONS, metavar="N", help="Most detections per image.", rich_help_panel=MODEL
    ),
]
Half = Annotated[bool, typer.Option("--half", help="fp16 inference (CUDA only).", rich_help_panel=MODEL)]
OfflineFallback = Annotated[
    bool,
    typer.Option(
        "--offline-fallback",
        help="No weights and no internet: run the model's config, random weights (warned).",
        rich_help_panel=MODEL,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR",
        help="Output folder (default: a new one in detect-runs/).",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
ExistOk = Annotated[
    bool,
    typer.Option("--exist-ok", help="Write into an existing --out.", rich_help_panel=OUTPUT),
]
Save = Annotated[bool, typer.Option("--save/--no-save", help="Annotated images.", rich_help_panel=OUTPUT)]
Formats = Annotated[
    list[OutputFormat] | None,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        metavar="NAME",
        help="Also csv, txt (YOLO labels), coco, or mot (tracks; video with --track); repeatable.",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
Recursive = Annotated[
    bool,
    typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.", rich_help_panel=INPUTS),
]
Batch = Annotated[
    int, typer.Option(min=1, max=256, metavar="N", help="Images per model call.", rich_help_panel=RUN)
]
UrlTimeout = Annotated[
    float,
    typer.Option(
        min=0.1,
        max=MAX_URL_TIMEOUT_S,
        metavar="SECONDS",
        help="Time a URL may take in all.",
        rich_help_panel=INPUTS,
    ),
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
        help="Largest picture to decode: 100M, 1G (4G at most).",
        rich_help_panel=INPUTS,
    ),
]
DEFAULT_MAX_PIXELS_TEXT = "100M"
Json = Annotated[
    bool,
    typer.Option("--json", help="A JSON line per input on stdout.", rich_help_panel=OUTPUT),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress bar or summary.", rich_help_panel=OUTPUT),
]
VideoSources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Videos, folders, URLs, rtsp/rtmp streams, a webcam (0) or @list.txt.",
        show_default=False,
    ),
]
VidStride = Annotated[
    int,
    typer.Option(
        "--vid-stride",
        min=1,
        max=MAX_VID_STRIDE,
        metavar="N",
        help="Process every Nth frame.",
        rich_help_panel=INPUTS,
    ),
]
MaxFrames = Annotated[
    int | None,
    typer.Option(
        "--max-frames",
        min=1,
        max=MAX_FRAMES,
        metavar="N",
        help="Stop after N frames of each video.",
        show_default=False,
        rich_help_panel=INPUTS,
    ),
]
SaveVideo = Annotated[bool, typer.Option("--save/--no-save", help="Annotated video.", rich_help_panel=OUTPUT)]
SaveFrames = Annotated[
    bool,
    typer.Option("--save-frames", help="Also each frame, annotated, as .jpg.", rich_help_panel=OUTPUT),
]
Reconnects = Annotated[
    int,
    typer.Option(
        min=0,
        max=MAX_RECONNECTS,
        metavar="N",
        help="Reopen a stream that stops, N times in a row.",
        rich_help_panel=INPUTS,
    ),
]


Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Finish the run in --out (skips what it recorded).",
        rich_help_panel=RUN,
    ),
]
RetryFailed = Annotated[
    bool,
    typer.Option("--retry-failed", help="--resume, and redo the inputs that failed.", rich_help_panel=RUN),
]
ExecutorOpt = Annotated[
    Executor,
    typer.Option(
        "--executor",
        case_sensitive=False,
        metavar="NAME",
        help="local (this process) or ray (a Ray cluster).",
        rich_help_panel=RUN,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (implies --executor ray).",
        show_default=False,
        rich_help_panel=RUN,
    ),
]
RayWorkers = Annotated[
    int | None,
    typer.Option(
        "--ray-workers",
        min=1,
        max=MAX_RAY_WORKERS,
        metavar="N",
        help="Ray workers (implies --executor ray).",
        show_default=False,
        rich_help_panel=RUN,
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
        metavar="NAME",
        help="auto, torch, onnx or openvino (exports cached).",
        rich_help_panel=MODEL,
    ),
]
PrecisionOpt = Annotated[
    PrecisionChoice | None,
    typer.Option(
        "--precision",
        case_sensitive=False,
        show_default=False,
        metavar="NAME",
        help="fp32, bf16, fp16, or int8 (OpenVINO, calibrated; never the default).",
        rich_help_panel=MODEL,
    ),
]
CalibrationDir = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        metavar="DIR",
        show_default=False,
        help="Pictures to calibrate int8 on (default: the run's first 300, or 300 frames across its videos).",
        rich_help_panel=MODEL,
    ),
]
