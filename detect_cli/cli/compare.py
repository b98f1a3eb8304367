"""`detect compare`: RT-DETR vs YOLO11 (or any models) on the same images or video, one report."""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from detect_cli.cli.groups import InputArgs, ModelArgs, OutputArgs, StreamArgs, grouped
from detect_cli.cli.options import INPUTS, MODEL, OUTPUT, RUN, exit_code_for, handle_errors
from detect_cli.cli.track_options import MotGt, TrackArgs

if TYPE_CHECKING:
    from detect_cli.compare import CompareJob, Comparison

CompareSources = Annotated[
    list[str],
    typer.Argument(
        metavar="SOURCE...",
        help="Images (files, folders, globs, URLs, @list.txt) or videos; not both.",
        show_default=False,
    ),
]

Models = Annotated[
    str,
    typer.Option(
        "--models",
        "-m",
        metavar="LIST",
        help="Two or more models, comma-separated: names or paths.",
        rich_help_panel=MODEL,
    ),
]
Backends = Annotated[
    str | None,
    typer.Option(
        "--backends",
        metavar="LIST",
        show_default=False,
        help="A fidelity matrix: each model on each of these backends, comma-separated, each with an "
        "optional :precision (torch,openvino:bf16,openvino:int8,onnx), against the model on PyTorch "
        "fp32: speed, memory, box and class agreement, score drift, mAP change; a variant below 90%% box "
        "agreement or a mean IoU of 0.85 is marked unsafe. Replaces --backend/--precision.",
    ),
]
Data = Annotated[
    Path | None,
    typer.Option(
        "--data",
        exists=True,
        dir_okay=False,
        metavar="YAML",
        help="Labels as a YOLO data.yaml: adds mAP.",
        show_default=False,
        rich_help_panel=INPUTS,
    ),
]
CocoJson = Annotated[
    Path | None,
    typer.Option(
        "--coco",
        exists=True,
        dir_okay=False,
        metavar="JSON",
        help="Labels as a COCO annotations json: adds mAP.",
        show_default=False,
        rich_help_panel=INPUTS,
    ),
]
Warmup = Annotated[
    int,
    typer.Option(min=0, max=100, metavar="N", help="Untimed runs per model first.", rich_help_panel=RUN),
]
Runs = Annotated[
    int,
    typer.Option(min=1, max=1000, metavar="N", help="Timed runs per model and image.", rich_help_panel=RUN),
]
SaveSideBySide = Annotated[
    bool,
    typer.Option(
        "--save/--no-save",
        help="Side-by-side pictures (or video).",
        rich_help_panel=OUTPUT,
    ),
]
Memory = Annotated[
    bool,
    typer.Option(
        "--memory/--no-memory",
        help="Peak memory, each model alone (seconds each).",
        rich_help_panel=RUN,
    ),
]
JsonReport = Annotated[
    bool, typer.Option("--json", help="Print report.json on stdout.", rich_help_panel=OUTPUT)
]


ExplainFirst = Annotated[
    int,
    typer.Option(
        "--explain",
        min=0,
        max=50,
        metavar="N",
        help="Where the models looked, on the first N images.",
        rich_help_panel=OUTPUT,
    ),
]


@dataclasses.dataclass(frozen=True)
class CompareArgs:
    """`detect compare`'s own options: the models, labels, timing and what is written."""

    models: Models = "rtdetr-l,yolo11n"
    backends_: Backends = None
    data: Data = None
    coco: CocoJson = None
    warmup: Warmup = 2
    runs: Runs = 1
    save: SaveSideBySide = True
    memory: Memory = True
    explain: ExplainFirst = 0
    json_out: JsonReport = False
    mot_gt: MotGt = None


@handle_errors
@grouped
def compare(
    ctx: typer.Context,
    sources: CompareSources,
    *,
    run: CompareArgs,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    stream: StreamArgs,
    tracking: TrackArgs,
) -> None:
    """Compare detectors on the same images or video: speed, agreement and (with labels) accuracy.

    Every model runs with the same device, backend, imgsz, conf and inputs; a video is decoded once and every model gets the same frames. Writes report.json, report.md, a self-contained report.html, plots/ and side-by-side/ pictures (a side-by-side video for a video source) to the output folder. Exit code 0: all inputs ok; 1: some failed (the rest were compared); 2: nothing could run; 130: interrupted; 143: stopped by SIGTERM; 141: the reader of --json left before the end.
    """  # noqa: E501 (one line per paragraph: --help wraps it to the terminal)
    import functools

    from detect_cli import ui
    from detect_cli.compare import run_compare
    from detect_cli.compare.report import report_dict
    from detect_cli.writers import json_text

    job = compare_job(sources, run, settings, inputs, output, stream, tracking)
    quiet = output.quiet
    printer = ui.StdoutLines() if run.json_out else None  # a closed stdout is refused before any work
    done = run_compare(
        job,
        progress=None if quiet else ui.RichProgress("compare"),
        warn=ui.messages(quiet),  # --quiet: warnings only, no spinner
        status=None if quiet else functools.partial(ui.warn, label="note"),
    )
    comparison = done.comparison
    for note in comparison.notes:  # about the figures (labels dropped, a stopped analysis): even with -q
        ui.warn(note, "note")
    if printer:
        printer.write(json_text(report_dict(comparison), indent=2) + "\n")
    if not quiet:
        print_report(comparison, done.out)
    ui.print_failures(comparison.failed)  # said even with --quiet: which inputs were left out
    code = exit_code_for(len(comparison.failed), comparison.interrupted, done.signum)
    code = printer.exit_code(code) if printer else code
    if code:
        raise typer.Exit(code)


def compare_job(
    sources: list[str],
    run: CompareArgs,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    stream: StreamArgs,
    tracking: TrackArgs,
) -> "CompareJob":
    """The options as a CompareJob: the model names resolved (an unknown one fails before anything is
    loaded), the backend planned once, or with --backends one plan per variant of each model."""
    import sys

    from detect_cli.compare import CompareJob, CompareSettings
    from detect_cli.errors import BadOptionError
    from detect_cli.models import resolve

    names = [m.strip() for m in run.models.split(",") if m.strip()]
    if len(names) < 2 and run.backends_ is None:
        raise BadOptionError("--models needs at least two models, comma-separated (e.g. rtdetr-l,yolo11n)")
    if run.data and run.coco:
        raise BadOptionError("give labels as --data or --coco, not both")
    refs = [resolve(n, "yolo") for n in names]  # unknown names fail before anything is loaded
    plans: tuple = ()
    if run.backends_ is None:
        options, plan = settings.settle()
    else:  # every variant of the model, the PyTorch fp32 reference first; --calibration for int8 ones
        from detect_cli.compare.fidelity import variant_plans
        from detect_cli.quantize import from_folder

        options, plan = dataclasses.replace(settings, calibration=None).settle()
        calibration = from_folder(settings.calibration) if settings.calibration else None
        refs, plans = variant_plans(refs, run.backends_, settings.device, plan, calibration)
    return CompareJob(
        sources=tuple(sources),
        models=tuple(refs),
        options=options,
        plan=plan,
        plans=plans,
        classes=settings.classes,
        iou_given=settings.iou is not None,
        settings=CompareSettings(imgsz=settings.imgsz, conf=settings.conf, warmup=run.warmup, runs=run.runs),
        data=run.data,
        coco=run.coco,
        out=output.out,
        exist_ok=output.exist_ok,
        save=run.save,
        recursive=inputs.recursive,
        url_timeout=inputs.url_timeout,
        max_pixels=inputs.max_pixels,
        vid_stride=stream.vid_stride,
        max_frames=stream.max_frames,
        reconnects=stream.reconnects,
        command=tuple(sys.argv),
        memory=run.memory,
        explain=run.explain,
        tracker=tracking.config(),
        mot_gt=run.mot_gt,
    )


def print_report(comparison: "Comparison", out_dir: Path) -> None:
    """The comparison on the terminal (stderr): the first screen, the tables, the fidelity matrix
    (--backends) last where it is seen, the side-by-side videos, where the report is."""
    from rich.markup import escape

    from detect_cli import ui
    from detect_cli.compare import rich_tables
    from detect_cli.compare.fidelity import fidelity_lines
    from detect_cli.compare.report import terminal_lines

    for line in terminal_lines(comparison):
        ui.err_console.print(line, markup=False, highlight=False)
    for table in rich_tables(comparison):
        ui.err_console.print(table)
    for line in fidelity_lines(comparison.fidelity):  # --backends: last, where it is seen
        ui.err_console.print(line, markup=False, highlight=False)
    if comparison.video:
        for path in comparison.video.side_by_side:
            ui.err_console.print(
                f"Side-by-side video: {out_dir / path}, codec {comparison.video.codec}", markup=False
            )
    ui.err_console.print(f"Report in {out_dir / 'report.html'} (and report.md, report.json)", markup=False)
    if comparison.interrupted:
        ui.err_console.print(f"[yellow]Interrupted[/]: {escape(comparison.interruption() or '')}.")
