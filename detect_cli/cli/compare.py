"""`detect compare`: RT-DETR vs YOLO11 (or any models) on the same inputs, one report."""

import json
from pathlib import Path
from typing import Annotated

import typer

from detect_cli.cli.image import exit_code_for
from detect_cli.cli.options import (
    Conf,
    Device,
    ExistOk,
    Half,
    Imgsz,
    MaxDet,
    Out,
    Quiet,
    Recursive,
    Save,
    Sources,
    UrlTimeout,
    handle_errors,
)

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
JsonReport = Annotated[bool, typer.Option("--json", help="Print report.json on stdout (logs go to stderr).")]


@handle_errors
def compare(
    sources: Sources,
    models: Models = "rtdetr-l,yolo11n",
    data: Data = None,
    coco: CocoJson = None,
    device: Device = "auto",
    imgsz: Imgsz = 640,
    conf: Conf = 0.25,
    max_det: MaxDet = 300,
    half: Half = False,
    warmup: Warmup = 2,
    runs: Runs = 1,
    out: Out = None,
    exist_ok: ExistOk = False,
    save: Save = True,
    recursive: Recursive = True,
    url_timeout: UrlTimeout = 15.0,
    json_out: JsonReport = False,
    quiet: Quiet = False,
) -> None:
    """Compare detectors on the same inputs: speed, agreement and (with labels) accuracy.

    Every model runs with the same device, imgsz, conf and inputs. Writes report.json, report.md, a
    self-contained report.html, plots/ and side-by-side/ pictures to the output folder. Exit code 0: all
    inputs ok; 1: some failed (the rest were compared); 2: nothing could run; 130: interrupted.
    """
    from detect_cli import ui
    from detect_cli.compare import CompareSettings, run_comparison, unique_labels
    from detect_cli.errors import BadOptionError
    from detect_cli.labels import load_labels
    from detect_cli.models import PredictOptions, resolve, select_device
    from detect_cli.pipeline import load_detector, option_warnings
    from detect_cli.report import CompareOutputs, prepare_report_dir, rich_tables, write_report
    from detect_cli.sources import discover_images

    names = [m.strip() for m in models.split(",") if m.strip()]
    if len(names) < 2:
        raise BadOptionError("--models needs at least two models, comma-separated (e.g. rtdetr-l,yolo11n)")
    if data and coco:
        raise BadOptionError("give labels as --data or --coco, not both")
    if imgsz % 32:
        raise BadOptionError(f"--imgsz {imgsz} is not a multiple of 32")
    refs = [resolve(n, "yolo") for n in names]  # unknown names fail before anything is loaded
    dev = select_device(device)
    if half and not dev.startswith("cuda"):
        raise BadOptionError("--half needs a CUDA device")
    items = discover_images(sources, recursive)
    labels = load_labels(items, data, coco) if (data or coco) else None
    options = PredictOptions(conf=conf, imgsz=imgsz, device=dev, max_det=max_det, half=half)
    detectors = [load_detector(ref, options, None) for ref in refs]
    warned: set[str] = set()
    for d in detectors:
        for note in option_warnings(d, iou_given=False):
            if note not in warned:
                ui.err_console.print(f"[yellow]warning[/]: {note}")
                warned.add(note)
    out_dir = prepare_report_dir(out, exist_ok)
    outputs = CompareOutputs(out_dir, unique_labels([d.name for d in detectors]), save=save)
    progress = None if quiet else ui.RichProgress("compare")
    settings = CompareSettings(imgsz=imgsz, conf=conf, warmup=warmup, runs=runs)
    try:
        comparison = run_comparison(detectors, items, settings, labels, outputs, progress, url_timeout)
    finally:
        outputs.close()
    write_report(comparison, out_dir, outputs.pictures)
    for note in comparison.notes:
        ui.err_console.print(f"[yellow]note[/]: {note}")
    if json_out:
        typer.echo(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False))
    if not quiet:
        for table in rich_tables(comparison):
            ui.err_console.print(table)
        ui.err_console.print(f"Report in [bold]{out_dir / 'report.html'}[/] (and report.md, report.json)")
        if comparison.interrupted:
            ui.err_console.print("[yellow]Interrupted[/]: the report covers the inputs done before Ctrl-C.")
    code = exit_code_for(len(comparison.failed), comparison.interrupted)
    if code:
        raise typer.Exit(code)
