"""`--help` that reads in a default terminal (80 columns, or piped): the classes of every command and
group.

Typer's help table gives each option a type column; these tweaks keep that column narrow, so the help
text keeps its width: a plain flag shows no type (Typer's `<bool>` invites `--nms true`), an option
whose metavar is chosen shows just that metavar (`0..1`, `N`, `PIXELS`: the range is still checked,
and the error says it), and a SOURCE argument shows no `<list[str]>`. Only what is drawn changes;
parsing and checking are Typer's. The help strings themselves are short (cli/options.py); the details
are in docs/.
"""

from collections.abc import Iterable
from typing import Any

from typer.core import TyperCommand, TyperGroup


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
    """A command whose `--help` fits 80 columns (see the module's docstring)."""


class DetectGroup(_NarrowHelp, TyperGroup):
    """A group of commands whose `--help` fits 80 columns (see the module's docstring)."""
