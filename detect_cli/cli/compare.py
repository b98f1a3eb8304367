"""`detect compare`: RT-DETR vs YOLO11 (or any models) on the same images or video, one report."""

from pathlib import Path
from typing import Annotated

import typer

from detect_cli.cli.options import (
    DEFAULT_MAX_PIXELS_TEXT,
    BackendChoice,
    BackendOpt,
    Conf,
    Device,
    ExistOk,
    Half,
    Imgsz,
    MaxDet,
    MaxFrames,
    MaxPixels,
    Out,
    PrecisionOpt,
    Quiet,
    Reconnects,
    Recursive,
    UrlTimeout,
    VidStride,
    exit_code_for,
    handle_errors,
    predict_options,
)

CompareSources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Images: files, folders, glob patterns, http(s) URLs, or @list.txt. Or videos: video files, "
        "folders of videos, URLs to video files, rtsp/rtmp streams, a webcam index (0). Not both in one run.",
        show_default=False,
    ),
]

Models = Annotated[
    str,
    typer.Option(
        "--models",
        "-m",
        help="Two or more models, comma-separated: names (rtdetr-l, yolo11n, …) or paths (.pt, .yaml).",
    ),
]
Data = Annotated[
    Path | None,
    typer.Option(
        "--data",
        exists=True,
        dir_okay=False,
        help="Labels as a YOLO data.yaml (class names; labels/ beside images/): adds mAP, precision, recall.",
        show_default=False,
    ),
]
CocoJson = Annotated[
    Path | None,
    typer.Option(
        "--coco",
        exists=True,
        dir_okay=False,
        help="Labels as a COCO annotations json (images matched by file_name): adds mAP, precision, recall.",
        show_default=False,
    ),
]
Warmup = Annotated[int, typer.Option(min=0, max=100, help="Untimed runs per model before measuring.")]
Runs = Annotated[int, typer.Option(min=1, max=1000, help="Timed runs per model and image.")]
SaveSideBySide = Annotated[
    bool,
    typer.Option(
        "--save/--no-save", help="Write side-by-side pictures (for a video source, a side-by-side video)."
    ),
]
JsonReport = Annotated[bool, typer.Option("--json", help="Print report.json on stdout (logs go to stderr).")]


@handle_errors
def compare(
    sources: CompareSources,
    models: Models = "rtdetr-l,yolo11n",
    data: Data = None,
    coco: CocoJson = None,
    device: Device = "auto",
    imgsz: Imgsz = 640,
    conf: Conf = 0.25,
    max_det: MaxDet = 300,
    half: Half = False,
    backend: BackendOpt = BackendChoice.auto,
    precision: PrecisionOpt = None,
    warmup: Warmup = 2,
    runs: Runs = 1,
    out: Out = None,
    exist_ok: ExistOk = False,
    save: SaveSideBySide = True,
    recursive: Recursive = True,
    vid_stride: VidStride = 1,
    max_frames: MaxFrames = None,
    reconnects: Reconnects = 3,
    url_timeout: UrlTimeout = 15.0,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS_TEXT,  # type: ignore[assignment]
    json_out: JsonReport = False,
    quiet: Quiet = False,
) -> None:
    """Compare detectors on the same images or video: speed, agreement and (with labels) accuracy.

    Every model runs with the same device, backend, imgsz, conf and inputs; a video is decoded once and every
    model gets the same frames. Writes report.json, report.md, a self-contained report.html, plots/ and
    side-by-side/ pictures (a side-by-side video for a video source) to the output folder. Exit code 0:
    all inputs ok; 1: some failed (the rest were compared); 2: nothing could run; 130: interrupted.
    """
    from detect_cli import ui
    from detect_cli.compare import CompareJob, CompareSettings, rich_tables, run_compare
    from detect_cli.errors import BadOptionError
    from detect_cli.models import resolve
    from detect_cli.writers import json_text

    names = [m.strip() for m in models.split(",") if m.strip()]
    if len(names) < 2:
        raise BadOptionError("--models needs at least two models, comma-separated (e.g. rtdetr-l,yolo11n)")
    if data and coco:
        raise BadOptionError("give labels as --data or --coco, not both")
    refs = [resolve(n, "yolo") for n in names]  # unknown names fail before anything is loaded
    options, exact = predict_options(
        conf, None, imgsz, device, max_det, half, False, backend.value, precision.value if precision else None
    )
    job = CompareJob(
        sources=tuple(sources),
        models=tuple(refs),
        options=options,
        backend=backend.value,
        precision=exact,
        settings=CompareSettings(imgsz=imgsz, conf=conf, warmup=warmup, runs=runs),
        data=data,
        coco=coco,
        out=out,
        exist_ok=exist_ok,
        save=save,
        recursive=recursive,
        url_timeout=url_timeout,
        max_pixels=max_pixels,
        vid_stride=vid_stride,
        max_frames=max_frames,
        reconnects=reconnects,
    )
    run = run_compare(
        job,
        progress=None if quiet else ui.RichProgress("compare"),
        warn=ui.warn,
    )
    comparison, out_dir = run.comparison, run.out
    for note in comparison.notes:
        ui.warn(note, "note")
    if json_out:
        typer.echo(json_text(comparison.to_dict(), indent=2))
    if not quiet:
        for table in rich_tables(comparison):
            ui.err_console.print(table)
        if comparison.video:
            for path in comparison.video.side_by_side:
                ui.err_console.print(
                    f"Side-by-side video: {out_dir / path}, codec {comparison.video.codec}", markup=False
                )
        ui.err_console.print(
            f"Report in {out_dir / 'report.html'} (and report.md, report.json)", markup=False
        )
        if comparison.interrupted:
            ui.err_console.print(
                "[yellow]Interrupted[/]: the report covers the inputs done before it stopped."
            )
    ui.print_failures(comparison.failed)  # said even with --quiet: which inputs were left out
    code = exit_code_for(len(comparison.failed), comparison.interrupted, run.signum)
    if code:
        raise typer.Exit(code)
