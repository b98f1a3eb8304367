"""SOURCE words that are option mistakes, caught before anything loads, with the fix.

Two slips send an option into the SOURCE list, where it would fail later as a missing file: ultralytics'
`key=value` style (`detect image bus.jpg conf=0.5`, from `yolo predict model=… conf=…`), and a value
after a plain flag (`--nms true`: the flag is set, and `true` becomes a source). Either is said as one
line naming what to write instead, and only for a word that names no file.
"""

import itertools
import os
import re
import shlex
from collections.abc import Sequence
from typing import Any

# Words that read as a flag's value; digits only where a SOURCE cannot be a webcam index.
BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})
BOOL_DIGITS = frozenset({"1", "0"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
# ultralytics' names for what detect calls otherwise.
ULTRALYTICS_KEYS = {"model": ("--model", "--models"), "save_txt": ("--format txt",)}
KEY_VALUE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)=(.*)", re.DOTALL)


def _options(params: Sequence[Any]) -> dict[str, Any]:
    """Every option by each of its names (`--conf`, `-m`, `--no-save`)."""
    return {name: p for p in params for name in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False))


def _flag_fix(name: str, param: Any, value: str) -> str:
    """What to write instead of `name value` (or `key=value`) for a plain flag: the flag, its negative
    (`--no-save`), or leaving it out."""
    negatives = list(getattr(param, "secondary_opts", ()))
    wants_on = (value.strip().lower() not in FALSE_WORDS) != (name in negatives)  # `--no-save no`: save
    positive = name if name not in negatives else next(o for o in param.opts if o.startswith("-"))
    if wants_on:
        return f"`{positive}`"
    return f"`{negatives[0]}`" if negatives else f"to leave `{positive}` out (it is off unless given)"


def _key_value_fix(word: str, options: dict[str, Any]) -> str | None:
    match = KEY_VALUE.fullmatch(word)
    if not match:
        return None
    key, value = match.group(1).lower(), match.group(2)
    if key == "source":
        return f"`{shlex.quote(value)}` (a SOURCE is given as it is)" if value else None
    candidates = [f"--{key.replace('_', '-')}", *ULTRALYTICS_KEYS.get(key, ())]
    for name in candidates:
        first = name.split()[0]
        if first not in options:
            continue
        if _is_flag(options[first]):
            return _flag_fix(first, options[first], value)
        return f"`{name} {shlex.quote(value)}`" if " " not in name else f"`{name}`"
    return None


def option_mistake(
    args: Sequence[str], sources: Sequence[str], params: Sequence[Any], webcams: bool
) -> str | None:
    """The message for the first SOURCE word in `sources` that is an option mistake, given the command
    line `args` as typed and the command's parameters; None when there is none. `webcams`: the command
    reads a webcam index (`0`), so digits after a flag may be meant as one and are left alone."""
    options = _options(params)
    unfound = [s for s in sources if not os.path.lexists(s)]
    slips = [(word, fix) for word in unfound if (fix := _key_value_fix(word, options)) is not None]
    if slips:  # all of them at once: `conf=0.5 imgsz=320` is one habit, fixed in one go
        words = ", ".join(f"'{word}'" for word, _ in slips)
        fixes = ", ".join(fix for _, fix in slips)
        return f"{words} {'is not a file' if len(slips) == 1 else 'are not files'}: did you mean {fixes}?"
    values = BOOL_WORDS if webcams else BOOL_WORDS | BOOL_DIGITS
    for before, word in itertools.pairwise(args):
        param = options.get(before)
        if param is not None and _is_flag(param) and word.lower() in values and word in unfound:
            return (
                f"'{word}' after {before} is not a file: {before} takes no value; "
                f"did you mean {_flag_fix(before, param, word)}?"
            )
    return None
