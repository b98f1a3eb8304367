"""`detect video` (RT-DETR) and `detect yolo video` (YOLO11): one command body, two defaults."""

from collections.abc import Callable

import typer

from detect_cli.cli.image import FAMILY_LABEL
from detect_cli.cli.options import (
    DEFAULT_MAX_PIXELS_TEXT,
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
    MaxFrames,
    MaxPixels,
    ModelName,
    Nms,
    Out,
    PrecisionOpt,
    Quiet,
    Reconnects,
    Recursive,
    SaveFrames,
    SaveVideo,
    UrlTimeout,
    VideoSources,
    VidStride,
    exit_code_for,
    handle_errors,
    json_printer,
    output_formats,
    predict_options,
)
from detect_cli.models import DEFAULT_MODEL, Family


def make_video_command(family: Family, run_name: str) -> Callable[..., None]:
    default_model = DEFAULT_MODEL[family]

    @handle_errors
    def video(
        sources: VideoSources,
        model: ModelName = default_model,
        conf: Conf = 0.25,
        iou: Iou = None,
        nms: Nms = False,
        imgsz: Imgsz = 640,
        device: Device = "auto",
        classes: Classes = None,
        max_det: MaxDet = 300,
        half: Half = False,
        vid_stride: VidStride = 1,
        max_frames: MaxFrames = None,
        out: Out = None,
        exist_ok: ExistOk = False,
        save: SaveVideo = True,
        save_frames: SaveFrames = False,
        formats: Formats = None,
        recursive: Recursive = True,
        batch: Batch = 1,
        url_timeout: UrlTimeout = 15.0,
        max_pixels: MaxPixels = DEFAULT_MAX_PIXELS_TEXT,  # type: ignore[assignment]
        reconnects: Reconnects = 3,
        backend: BackendOpt = BackendChoice.auto,
        precision: PrecisionOpt = None,
        json_out: Json = False,
        quiet: Quiet = False,
    ) -> None:
        from detect_cli import ui
        from detect_cli.models import resolve
        from detect_cli.pipeline import VideoJob, run_video

        ref = resolve(model, family)
        options, exact = predict_options(
            conf,
            iou,
            imgsz,
            device,
            max_det,
            half,
            nms,
            backend.value,
            precision.value if precision else None,
        )
        job = VideoJob(
            sources=tuple(sources),
            model=ref,
            options=options,
            backend=backend.value,
            precision=exact,
            out=out,
            run_name=run_name,
            exist_ok=exist_ok,
            formats=output_formats(formats),
            save_video=save,
            save_frames=save_frames,
            recursive=recursive,
            url_timeout=url_timeout,
            max_pixels=max_pixels,
            batch=batch,
            classes=classes,
            iou_given=iou is not None,
            vid_stride=vid_stride,
            max_frames=max_frames,
            reconnects=reconnects,
        )
        progress = None if quiet else ui.RichProgress(ref.name, unit=" fps")
        report, detector = run_video(
            job,
            progress=progress,
            echo=json_printer() if json_out else None,
            warn=ui.warn,
        )
        if not quiet:
            ui.print_video_summary(report, f"{detector.name} ({detector.backend}, {detector.precision})")
        code = exit_code_for(report.summary.failed, report.interrupted, report.signum)
        if code:
            raise typer.Exit(code)

    video.__doc__ = (
        f"Detect objects in videos, streams and webcams with {FAMILY_LABEL[family]} "
        f"(default model {default_model}).\n\n"
        "Writes an annotated video per source and frames.jsonl (one line per processed frame) to the "
        "output folder. Exit code 0: all ok; 1: a video was truncated or unreadable (what was decoded "
        "is written); 2: nothing could run; 130: interrupted (outputs finalized)."
    )
    return video
