"""`detect image` (RT-DETR) and `detect yolo image` (YOLO11): one command body, two defaults."""

import sys
from collections.abc import Callable

import typer

from detect_cli.cli.options import (
    BackendChoice,
    BackendOpt,
    Batch,
    Classes,
    Conf,
    Device,
    ExistOk,
    Formats,
    Half,
    Imgsz,
    Iou,
    Json,
    MaxDet,
    Nms,
    Out,
    PrecisionOpt,
    Quiet,
    Recursive,
    Save,
    Sources,
    UrlTimeout,
    handle_errors,
)
from detect_cli.errors import ExitCode
from detect_cli.models import DEFAULT_MODEL, Family
from detect_cli.writers import FORMATS

FAMILY_LABEL = {"rtdetr": "RT-DETR", "yolo": "YOLO11"}


def _print_json_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def exit_code_for(failed: int, interrupted: bool) -> int:
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


def make_image_command(family: Family, run_name: str) -> Callable[..., None]:
    default_model = DEFAULT_MODEL[family]

    @handle_errors
    def image(
        sources: Sources,
        model: str = typer.Option(
            default_model,
            "--model",
            "-m",
            help="A model name (rtdetr-l, rtdetr-x, yolo11n…yolo11x), or a path to a .pt, "
            "a .yaml model config, .onnx or an exported model folder.",
        ),
        conf: Conf = 0.25,
        iou: Iou = None,
        nms: Nms = False,
        imgsz: Imgsz = 640,
        device: Device = "auto",
        classes: Classes = None,
        max_det: MaxDet = 300,
        half: Half = False,
        backend: BackendOpt = BackendChoice.auto,
        precision: PrecisionOpt = None,
        out: Out = None,
        exist_ok: ExistOk = False,
        save: Save = True,
        formats: Formats = None,
        recursive: Recursive = True,
        batch: Batch = 1,
        url_timeout: UrlTimeout = 15.0,
        json_out: Json = False,
        quiet: Quiet = False,
    ) -> None:
        from detect_cli import backends, ui
        from detect_cli.errors import BadOptionError
        from detect_cli.models import PredictOptions, resolve, select_device
        from detect_cli.pipeline import ImageJob, run_images

        ref = resolve(model, family)
        dev = select_device(backends.device_for(backend.value, device))
        if half and not dev.startswith("cuda"):
            raise BadOptionError("--half needs a CUDA device")
        chosen = backends.choose_backend(backend.value, dev, backends.availability())
        exact = backends.check_precision(chosen, precision.value if precision else None, dev, half)
        if imgsz % 32:
            raise BadOptionError(f"--imgsz {imgsz} is not a multiple of 32")
        options = PredictOptions(
            conf=conf,
            iou=0.7 if iou is None else iou,
            imgsz=imgsz,
            device=dev,
            max_det=max_det,
            half=exact == "fp16",
            nms=nms,
        )
        job = ImageJob(
            sources=tuple(sources),
            model=ref,
            options=options,
            out=out,
            run_name=run_name,
            exist_ok=exist_ok,
            formats=tuple(dict.fromkeys(["jsonl", *(f.value for f in formats or [])])),
            save_images=save,
            recursive=recursive,
            url_timeout=url_timeout,
            batch=batch,
            classes=classes,
            iou_given=iou is not None,
            backend=backend.value,
            precision=exact,
        )
        assert set(job.formats) <= set(FORMATS)
        progress = None if quiet else ui.RichProgress(ref.name)
        report, detector = run_images(
            job,
            progress=progress,
            echo=_print_json_line if json_out else None,
            warn=lambda note: ui.err_console.print(f"[yellow]warning[/]: {note}"),
        )
        if not quiet:
            ui.print_summary(report, f"{detector.name} ({detector.backend}, {detector.precision})")
        code = exit_code_for(report.summary.failed, report.interrupted)
        if code:
            raise typer.Exit(code)

    image.__doc__ = (
        f"Detect objects in images with {FAMILY_LABEL[family]} (default model {default_model}).\n\n"
        "Writes results.jsonl (one line per input) and annotated images to the output folder. "
        "Exit code 0: all inputs ok; 1: some failed (the rest were written); 2: nothing could run; "
        "130: interrupted."
    )
    return image
