"""The `detect` command: Typer apps assembled from one file per command group.

Only argument parsing, output format and exit codes live here; the work is in the engine modules.
"""

import json
import os
import sys
from typing import Annotated, Any

import typer

from detect_cli import __version__
from detect_cli.cli.command import DetectCommand, DetectGroup, VideoCommand
from detect_cli.cli.compare import compare
from detect_cli.cli.explain import explain
from detect_cli.cli.image import image, yolo_image
from detect_cli.cli.options import handle_errors, say_error
from detect_cli.cli.video import video, yolo_video


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Click's error types: typer vendors click in recent releases, older ones use click itself."""
    kinds: list[type[BaseException]] = [getattr(typer, "TyperException", typer.BadParameter.__mro__[2])]
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


class OneLineErrors(DetectGroup):
    """Usage errors (a bad option value, an unknown option, a missing argument) as one `error:` line
    and exit code 2, like every other error, instead of a boxed panel."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            say_error("interrupted")
            result = 130
        except _usage_errors() as e:
            text = e.format_message() if hasattr(e, "format_message") else str(e)
            message = " ".join(text.split())
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            if message:  # empty when the help was shown instead (a group called with no command)
                say_error(message + hint)
            result = getattr(e, "exit_code", 2)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="detect",
    cls=OneLineErrors,
    help="Run RT-DETR (a transformer) and YOLO11 (a CNN) on your own images, and see which suits you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
yolo_app = typer.Typer(
    help="The same commands on YOLO11 (default yolo11n), for comparison with RT-DETR.",
    cls=DetectGroup,
    no_args_is_help=True,
)
app.add_typer(yolo_app, name="yolo")

app.command("image", cls=DetectCommand)(image)
yolo_app.command("image", cls=DetectCommand)(yolo_image)
app.command("video", cls=VideoCommand)(video)
yolo_app.command("video", cls=VideoCommand)(yolo_video)
app.command("compare", cls=VideoCommand)(compare)
app.command("explain", cls=DetectCommand)(explain)


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
    """Run RT-DETR (a transformer) and YOLO11 (a CNN) on your own images, and see which suits you."""
    # Commands read --debug from their context (options.debug_asked): no global state.


@app.command("models", cls=DetectCommand)
@handle_errors
def models_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    clear_cache: Annotated[
        bool, typer.Option("--clear-cache", help="Delete every cached ONNX/OpenVINO export.")
    ] = False,
) -> None:
    """List known model names, where their weights are cached, and the cached ONNX/OpenVINO exports."""
    from detect_cli import backends, ui
    from detect_cli.models import cache_dir, catalog

    if clear_cache:
        cleared = backends.clear_exports()
        root = backends.exports_dir()
        typer.echo(f"removed {cleared.exports} cached exports ({cleared.size / 2**20:.1f} MiB) from {root}")
        if cleared.left:
            shown = ", ".join(str(p.relative_to(root)) for p in cleared.left[:5])
            more = f" and {len(cleared.left) - 5} more" if len(cleared.left) > 5 else ""
            typer.echo(f"left alone (not exports this cache made): {shown}{more}")
        if cleared.busy:
            shown = ", ".join(p.name for p in cleared.busy[:5])
            typer.echo(f"left alone (an export being made now by another process): {shown}")
        return
    rows = catalog()
    exports = [ui.export_row(e) for e in backends.cached_exports()]
    if json_out:
        printer = ui.StdoutLines()
        printer.write(
            json.dumps({"cache_dir": str(cache_dir()), "models": rows, "exports": exports}, indent=2) + "\n"
        )
        if printer.reader_gone:
            raise typer.Exit(ui.READER_GONE)
        return
    try:
        _print_models(rows, exports)
    except BrokenPipeError:  # `detect models | head -3`: the reader has what it wanted
        ui.silence_stdout()
        raise typer.Exit(ui.READER_GONE) from None


def _print_models(rows: list[dict[str, Any]], exports: list[dict[str, object]]) -> None:
    from detect_cli import backends, ui
    from detect_cli.models import cache_dir

    used = sum(float(str(e["size_mb"])) for e in exports)
    cap = backends.cache_limit() / 2**20
    ui.print_models(rows, exports, cache_dir(), backends.exports_dir(), used, cap)


def _reserve_standard_fds() -> None:
    """A standard file descriptor the caller closed (`>&-`) is opened on /dev/null, so that no file
    the run opens takes its number: whatever a library prints on fd 1 would land in results.jsonl."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main() -> None:
    _reserve_standard_fds()
    app()
