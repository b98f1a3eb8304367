"""Output names: each input's per-input files under the run folder, no two of them one file on a
case-insensitive (or normalising) file system. Discovery names every input of a run by this one rule
(pictures and videos alike), so every command writes the same names.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Protocol, TypeVar


class HasRelPath(Protocol):
    @property
    def rel_path(self) -> PurePosixPath: ...


Named = TypeVar("Named", bound=HasRelPath)


def _fold(path: PurePosixPath | str) -> str:
    """A name as a case-insensitive (or normalising) file system compares it."""
    return unicodedata.normalize("NFC", str(path)).casefold()


def unique_stems(named: Sequence[tuple[PurePosixPath, str]]) -> list[PurePosixPath]:
    """The rule, on (name without its suffix, the input's suffix) pairs: each input's output name
    without a suffix, no two alike ignoring case.

    An input keeps its name (photos/x) unless another input of the run has that name too, ignoring
    case (x.jpg beside x.png, y.jpg beside Y.JPG, a.mp4 beside A.mov); then each of them keeps its
    suffix in the name (photos/x.jpg, photos/x.png), and a name still taken gets -2, -3 … before the
    suffix, in the order of the paths sorted. The names depend only on the set of inputs, not on
    their order, so a resumed run names its inputs as the first did. The suffix is given apart from
    the name because not every name has one (a stream's `streams/10.0.0.5_live` has none to drop).
    """
    by_stem = Counter(_fold(stem) for stem, _ in named)
    names: dict[int, PurePosixPath] = {}
    named_range = range(len(named))
    taken: set[str] = set()
    for i, (stem, _) in enumerate(named):
        if by_stem[_fold(stem)] == 1:
            names[i] = stem
            taken.add(_fold(stem))
    shared = sorted((i for i in named_range if i not in names), key=lambda i: f"{named[i][0]}{named[i][1]}")
    for i in shared:
        stem, suffix = named[i]
        name, n = stem.name + suffix, 1
        while _fold(stem.parent / name) in taken:
            n += 1
            name = f"{stem.name}-{n}{suffix}"
        taken.add(_fold(stem.parent / name))
        names[i] = stem.parent / name
    return [names[i] for i in named_range]


def output_names(rel_paths: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    """Output names for inputs named by their path with its suffix (pictures): `unique_stems`, with
    the input's suffix put back, so `output_file(name, suffix)` is each output of one kind
    (photos/x.jpg → labels/photos/x.txt, or labels/photos/x.jpg.txt beside photos/x.png)."""
    stems = unique_stems([(r.with_suffix(""), r.suffix) for r in rel_paths])
    return [
        rel if stem == rel.with_suffix("") else stem.with_name(stem.name + rel.suffix)
        for stem, rel in zip(stems, rel_paths, strict=True)
    ]


def name_outputs(items: Sequence[Named]) -> list[Named]:
    """`items` (inputs with a `rel_path`) with their rel_path made their output name (`output_names`)."""
    names = output_names([item.rel_path for item in items])
    return [
        item if name == item.rel_path else replace(item, rel_path=name)  # type: ignore[type-var]
        for item, name in zip(items, names, strict=True)
    ]


def output_file(rel_path: PurePosixPath, suffix: str) -> PurePosixPath:
    """The file of one kind (its `suffix`) for the input named `rel_path` (see `output_names`)."""
    return rel_path.with_suffix(suffix)
