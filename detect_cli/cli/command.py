"""The classes of every command and group: `--help` that reads in a default terminal (80 columns, or
piped), and SOURCE words that are option mistakes refused before the command runs (cli/mistakes.py).

Typer's help table gives each option a type column; these tweaks keep that column narrow, so the help
text keeps its width: a plain flag shows no type (Typer's `<bool>` invites `--nms true`), an option
whose metavar is chosen shows just that metavar (`0..1`, `N`, `PIXELS`: the range is still checked,
and the error says it), and a SOURCE argument shows no `<list[str]>`. Only what is drawn changes;
parsing and checking are Typer's. The help strings themselves are short (cli/options.py); the details
are in docs/.
"""

from collections.abc import Iterable
from typing import Any

from typer import Exit
from typer.core import TyperCommand, TyperGroup

from detect_cli.errors import ExitCode


def _no_type(*args: Any, **kwargs: Any) -> None:
    return None


def narrow(params: Iterable[Any]) -> None:
    """What Typer draws in the type column of these parameters: as little as says what to give."""
    for param in params:
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = _no_type
        elif getattr(param, "is_flag", False) and getattr(param, "is_bool_flag", True):
            param.metavar = ""  # a plain flag takes no value
        elif getattr(param, "metavar", None) is not None and hasattr(param, "_get_number_range_help_str"):
            param._get_number_range_help_str = _no_type  # the chosen metavar says what to give


class _NarrowHelp:
    """Narrows a command's parameters, and its help option, as they are made."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        narrow(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        narrow([option] if option is not None else [])
        return option


class DetectCommand(_NarrowHelp, TyperCommand):
    """A command whose `--help` fits 80 columns, and whose SOURCE words are checked for option mistakes
    (`conf=0.5`, `--nms true`) before it runs, as one `error:` line and exit code 2."""

    webcams = False  # whether a SOURCE may be a webcam index (`0`): then digits are not flag values

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["detect.args"] = list(args)  # as typed: which word followed which flag
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from detect_cli.cli.mistakes import option_mistake
        from detect_cli.cli.options import say_error

        sources = ctx.params.get("sources") or ()
        args = ctx.meta.get("detect.args", [])
        if sources and (problem := option_mistake(args, sources, self.params, self.webcams)):
            say_error(problem)
            raise Exit(ExitCode.CANNOT_RUN)
        return super().invoke(ctx)


class VideoCommand(DetectCommand):
    """A command whose SOURCE may be a webcam index (`detect video 0`)."""

    webcams = True


class DetectGroup(_NarrowHelp, TyperGroup):
    """A group of commands whose `--help` fits 80 columns (see the module's docstring)."""
