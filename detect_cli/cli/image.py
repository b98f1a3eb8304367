"""`detect image` (RT-DETR) and `detect yolo image` (YOLO11): one command body, two defaults."""

from collections.abc import Callable

import typer

from detect_cli.cli.options import (
    DEFAULT_MAX_PIXELS_TEXT,
    BackendChoice,
    BackendOpt,
    Batch,
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
    MaxPixels,
    ModelName,
    Nms,
    Out,
    PrecisionOpt,
    Quiet,
    RayAddress,
    RayWorkers,
    Recursive,
    Resume,
    RetryFailed,
    Save,
    Sources,
    UrlTimeout,
    exit_code_for,
    handle_errors,
    json_printer,
    output_formats,
    predict_options,
    resume_command,
)
from detect_cli.models import DEFAULT_MODEL, Family
from detect_cli.writers import FORMATS

FAMILY_LABEL = {"rtdetr": "RT-DETR", "yolo": "YOLO11"}


def make_image_command(family: Family, run_name: str) -> Callable[..., None]:
    default_model = DEFAULT_MODEL[family]

    @handle_errors
    def image(
        ctx: typer.Context,
        sources: Sources,
        model: ModelName = default_model,
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
        max_pixels: MaxPixels = DEFAULT_MAX_PIXELS_TEXT,  # type: ignore[assignment]
        json_out: Json = False,
        quiet: Quiet = False,
        resume: Resume = False,
        retry_failed: RetryFailed = False,
        executor: ExecutorOpt = Executor.local,
        ray_address: RayAddress = None,
        ray_workers: RayWorkers = None,
    ) -> None:
        from detect_cli import ui
        from detect_cli.errors import BadOptionError
        from detect_cli.models import resolve
        from detect_cli.pipeline import ImageJob, run_images

        ref = resolve(model, family)
        on_ray = executor is Executor.ray or ray_address is not None or ray_workers is not None
        if on_ray and backend.value in ("onnx", "openvino"):
            raise BadOptionError(f"--backend {backend.value} does not run on Ray yet: Ray workers use torch")
        requested = "torch" if on_ray else backend.value
        options, exact = predict_options(
            conf,
            iou,
            imgsz,
            device,
            max_det,
            half,
            nms,
            requested,
            precision.value if precision else None,
            resolve_device=not on_ray,
        )
        job = ImageJob(
            sources=tuple(sources),
            model=ref,
            options=options,
            out=out,
            run_name=run_name,
            exist_ok=exist_ok,
            formats=output_formats(formats),
            save_images=save,
            recursive=recursive,
            url_timeout=url_timeout,
            max_pixels=max_pixels,
            batch=batch,
            classes=classes,
            iou_given=iou is not None,
            resume=resume,
            retry_failed=retry_failed,
            executor="ray" if on_ray else "local",
            ray_address=ray_address,
            ray_workers=ray_workers,
            backend=requested,
            precision=exact,
        )
        assert set(job.formats) <= set(FORMATS)
        progress = None if quiet else ui.RichProgress(ref.name)
        report, detector = run_images(
            job,
            progress=progress,
            echo=json_printer() if json_out else None,
            warn=ui.warn,
        )
        if not quiet:
            ui.print_summary(report, f"{detector.name} ({detector.backend}, {detector.precision})")
        if report.interrupted:  # said even with --quiet: it is what to do next
            ui.err_console.print(f"To resume: {resume_command(ctx, report.out)}", markup=False)
        code = exit_code_for(report.summary.failed + report.skipped_failed, report.interrupted, report.signum)
        if code:
            raise typer.Exit(code)

    image.__doc__ = (
        f"Detect objects in images with {FAMILY_LABEL[family]} (default model {default_model}).\n\n"
        "Writes results.jsonl (one line per input) and annotated images to the output folder. "
        "Exit code 0: all inputs ok; 1: some failed (the rest were written); 2: nothing could run; "
        "130: interrupted (--resume finishes it)."
    )
    return image
