"""`detect explain`: where RT-DETR's attention went for each detection, beside YOLO's activation map."""

from typing import Annotated

import typer

from detect_cli.cli.groups import InputArgs, OutputArgs, grouped
from detect_cli.cli.options import (
    MODEL,
    OUTPUT,
    BackendChoice,
    BackendOpt,
    Conf,
    Device,
    Imgsz,
    Json,
    ModelName,
    OfflineFallback,
    Sources,
    exit_code_for,
    handle_errors,
    json_printer,
)

Compare = Annotated[
    str,
    typer.Option(
        "--compare",
        metavar="NAME",
        help="The YOLO model beside it (EigenCAM), or 'none'.",
        rich_help_panel=MODEL,
    ),
]
Objects = Annotated[
    int,
    typer.Option(
        "--objects",
        "-n",
        min=1,
        max=100,
        metavar="N",
        help="Detections explained per image, best first.",
        rich_help_panel=OUTPUT,
    ),
]


@handle_errors
@grouped
def explain(
    ctx: typer.Context,
    sources: Sources,
    model: ModelName = "rtdetr-l",
    compare: Compare = "yolo11n",
    objects: Objects = 5,
    conf: Conf = 0.25,
    imgsz: Imgsz = 640,
    device: Device = "auto",
    backend: BackendOpt = BackendChoice.torch,
    json_out: Json = False,
    offline_fallback: OfflineFallback = False,
    *,
    inputs: InputArgs,
    output: OutputArgs,
) -> None:
    from detect_cli import ui
    from detect_cli.errors import BadOptionError
    from detect_cli.explain import EXPLAIN_JSONL, TORCH_ONLY, ExplainJob, ImageExplanation, run_explain
    from detect_cli.models import PredictOptions, resolve, select_device

    if backend not in (BackendChoice.torch, BackendChoice.auto):  # auto is torch's to choose here
        raise BadOptionError(TORCH_ONLY)
    if imgsz % 32:
        raise BadOptionError(f"--imgsz {imgsz} is not a multiple of 32")
    yolo = None if compare.strip().lower() == "none" else resolve(compare, "yolo")
    job = ExplainJob(
        sources=tuple(sources),
        model=resolve(model, "rtdetr"),
        compare=yolo,
        options=PredictOptions(conf=conf, imgsz=imgsz, device=select_device(device)),
        objects=objects,
        out=output.out,
        exist_ok=output.exist_ok,
        url_timeout=inputs.url_timeout,
        max_pixels=inputs.max_pixels,
        offline_fallback=offline_fallback,
    )

    def progress(result: ImageExplanation) -> None:
        if not output.quiet:
            what = result.error or f"{result.detections_total} detections, picture {result.picture}"
            ui.err_console.print(f"{result.source}: {what}", markup=False)

    warn = ui.messages(output.quiet)  # --quiet: warnings still said
    run = run_explain(job, warn=warn, echo=json_printer() if json_out else None, on_image=progress)
    if not output.quiet:
        ui.err_console.print(f"Pictures and {EXPLAIN_JSONL} in {run.out}", markup=False)
    code = exit_code_for(run.failed, run.interrupted, run.signum)
    if code:
        raise typer.Exit(code)


explain.__doc__ = (
    "Show where RT-DETR looked to find each object, beside a YOLO model's activation map.\n\n"
    "Per image, one picture in the output folder: RT-DETR's decoder sampling points per detection "
    "(the box-making decoder layer; all heads, levels and points, sized by weight) | RT-DETR's encoder "
    "attention from each box centre (AIFI, averaged over heads) | the YOLO model's EigenCAM. "
    "explain.jsonl holds the numbers (box, class, score, query, sampling points with weights, attention "
    "spread). Needs the torch backend: exported models expose no attention. "
    "Exit code 0: all images done; 1: some could not be read; 2: nothing could run; 130/143: stopped."
)
