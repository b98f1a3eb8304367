"""`detect explain`: where RT-DETR's attention went for each detection, beside YOLO's activation map."""

from typing import Annotated

import typer

from detect_cli.cli.options import (
    BackendChoice,
    BackendOpt,
    Conf,
    Device,
    ExistOk,
    Imgsz,
    Json,
    ModelName,
    Out,
    Quiet,
    Sources,
    exit_code_for,
    handle_errors,
    json_printer,
    predict_options,
)

Compare = Annotated[
    str,
    typer.Option(
        "--compare",
        help="The YOLO model whose EigenCAM activation map is the third panel (a name or a .pt/.yaml "
        "path), or 'none' to leave it out.",
    ),
]
Objects = Annotated[
    int, typer.Option("--objects", "-n", min=1, max=100, help="Detections explained per image, best first.")
]


@handle_errors
def explain(
    sources: Sources,
    model: ModelName = "rtdetr-l",
    compare: Compare = "yolo11n",
    objects: Objects = 5,
    conf: Conf = 0.25,
    imgsz: Imgsz = 640,
    device: Device = "auto",
    backend: BackendOpt = BackendChoice.torch,
    out: Out = None,
    exist_ok: ExistOk = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    from detect_cli import ui
    from detect_cli.backends import exported_kind
    from detect_cli.errors import BadOptionError
    from detect_cli.explain import EXPLAIN_JSONL, TORCH_ONLY, ImageExplanation, explain_images
    from detect_cli.models import resolve
    from detect_cli.pipeline import load_detector, option_warnings
    from detect_cli.sources import discover_images
    from detect_cli.writers import prepare_out

    if backend not in (BackendChoice.torch, BackendChoice.auto):  # auto is torch's to choose here
        raise BadOptionError(TORCH_ONLY)
    ref = resolve(model, "rtdetr")
    if ref.family != "rtdetr":
        raise BadOptionError(f"--model {model} is not an RT-DETR model; explain reads RT-DETR's attention")
    yolo_ref = None if compare.strip().lower() == "none" else resolve(compare, "yolo")
    if yolo_ref is not None and yolo_ref.family != "yolo":
        raise BadOptionError(f"--compare {compare} is not a YOLO model (or 'none')")
    if any(exported_kind(r.location) for r in (ref, yolo_ref) if r is not None):
        raise BadOptionError(TORCH_ONLY)
    options, _ = predict_options(conf, None, imgsz, device, 300, False, False, "torch")

    def warn(note: str) -> None:
        if not quiet:
            ui.err_console.print(f"[yellow]warning[/]: {note}")

    items = discover_images(sources)  # before loading: a wrong path fails fast
    rtdetr = load_detector(ref, options, None, "torch", None, warn)
    if rtdetr.family != "rtdetr":  # a .pt whose name did not say: the loaded weights decide
        raise BadOptionError(
            f"{ref.location} holds a YOLO model; explain reads RT-DETR's attention (--model)"
        )
    yolo = load_detector(yolo_ref, options, None, "torch", None, warn) if yolo_ref else None
    if yolo is not None and yolo.family != "yolo":
        raise BadOptionError(f"{yolo.ref.location} holds an RT-DETR model; --compare takes a YOLO model")
    for detector in (rtdetr, yolo):
        for note in option_warnings(detector, False) if detector else ():
            warn(note)
    folder = prepare_out(out, "explain", exist_ok, record=EXPLAIN_JSONL)

    def progress(result: ImageExplanation) -> None:
        if quiet:
            return
        what = result.error or f"{result.detections_total} detections, picture {result.picture}"
        ui.err_console.print(f"{result.source}: {what}", markup=False)

    run = explain_images(
        items,
        rtdetr,
        folder,
        yolo,
        objects,
        echo=json_printer() if json_out else None,
        on_image=progress,
    )
    if not quiet:
        ui.err_console.print(f"Pictures and {EXPLAIN_JSONL} in {run.out}", markup=False)
    code = exit_code_for(run.failed, False)
    if code:
        raise typer.Exit(code)


explain.__doc__ = (
    "Show where RT-DETR looked to find each object, beside a YOLO model's activation map.\n\n"
    "Per image, one picture in the output folder: RT-DETR's decoder sampling points per detection "
    "(the box-making decoder layer; all heads, levels and points, sized by weight) | RT-DETR's encoder "
    "attention from each box centre (AIFI, averaged over heads) | the YOLO model's EigenCAM. "
    "explain.jsonl holds the numbers (box, class, score, query, sampling points with weights, attention "
    "spread). Needs the torch backend: exported models expose no attention. "
    "Exit code 0: all images done; 1: some could not be read; 2: nothing could run."
)
