"""The `detect` command: Typer apps assembled from one file per command group.

Only argument parsing, output format and exit codes live here; the work is in the engine modules.
"""

import json
from typing import Annotated

import typer

from detect_cli import __version__
from detect_cli.cli.compare import compare
from detect_cli.cli.explain import explain
from detect_cli.cli.image import make_image_command
from detect_cli.cli.options import State, handle_errors
from detect_cli.cli.video import make_video_command

app = typer.Typer(
    name="detect",
    help="Run RT-DETR (a transformer) and YOLO11 (a CNN) on your own images, and see which suits you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
yolo_app = typer.Typer(
    help="The same commands on YOLO11 (default yolo11n), for comparison with RT-DETR.",
    no_args_is_help=True,
)
app.add_typer(yolo_app, name="yolo")

app.command("image")(make_image_command("rtdetr", "image"))
yolo_app.command("image")(make_image_command("yolo", "yolo-image"))
app.command("video")(make_video_command("rtdetr", "video"))
yolo_app.command("video")(make_video_command("yolo", "yolo-video"))
app.command("compare")(compare)
app.command("explain")(explain)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"detect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    State.debug = debug or State.debug_from_env()


@app.command("models")
@handle_errors
def models_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    clear_cache: Annotated[
        bool, typer.Option("--clear-cache", help="Delete every cached ONNX/OpenVINO export.")
    ] = False,
) -> None:
    """List known model names, where their weights are cached, and the cached ONNX/OpenVINO exports."""
    from detect_cli import backends, ui
    from detect_cli.models import cache_dir, catalog

    if clear_cache:
        folders, size = backends.clear_exports()
        typer.echo(f"removed {folders} cached exports ({size / 2**20:.1f} MiB) from {backends.exports_dir()}")
        return
    rows = catalog()
    exports = [ui.export_row(e) for e in backends.cached_exports()]
    if json_out:
        typer.echo(json.dumps({"cache_dir": str(cache_dir()), "models": rows, "exports": exports}, indent=2))
        return
    ui.out_console.print(ui.models_table(rows))
    ui.out_console.print(f"Weights cache: {cache_dir()} (set DETECT_CACHE_DIR to move it)")
    if exports:
        ui.out_console.print(ui.exports_table(exports))
        ui.out_console.print(f"Exports cache: {backends.exports_dir()}")
    else:
        ui.out_console.print("No cached exports (made on first use of --backend onnx, openvino or auto).")


def main() -> None:
    app()
