"""Output names: each input's per-input files under the run folder, no two of them one file on a
case-insensitive (or normalising) file system.
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


def output_names(rel_paths: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    """Output names for a run's inputs: each input's per-input files (annotated picture, YOLO label,
    compare's side-by-side, explain's picture) are `output_file(name, suffix)`, and no two inputs' names
    give the same file, even on a case-insensitive file system.

    An input is named by its path without the suffix (photos/x.jpg → photos/x: labels/photos/x.txt)
    unless another input of the run has that name too, ignoring case (x.jpg beside x.png, or y.jpg beside
    Y.JPG); then each of them keeps its suffix in the name (photos/x.jpg → labels/photos/x.jpg.txt,
    photos/x.png → labels/photos/x.png.txt), and a name still taken gets -2, -3 … before the suffix, in
    the order of the paths sorted. The names depend only on the set of inputs, not on their order, so a
    resumed run names its inputs as the first did. Returned as relative paths that keep the input's
    suffix (photos/x.jpg.jpg for a kept-suffix name): `output_file` swaps it for the output's.
    """
    by_stem = Counter(_fold(r.with_suffix("")) for r in rel_paths)
    names: dict[int, PurePosixPath] = {}
    taken: set[str] = set()
    for i, rel in enumerate(rel_paths):
        if by_stem[_fold(rel.with_suffix(""))] == 1:
            names[i] = rel
            taken.add(_fold(rel.with_suffix("")))
    shared = sorted((i for i in range(len(rel_paths)) if i not in names), key=lambda i: str(rel_paths[i]))
    for i in shared:
        rel = rel_paths[i]
        stem, n = rel.name, 1
        while _fold(rel.parent / stem) in taken:
            n += 1
            stem = f"{rel.stem}-{n}{rel.suffix}"
        taken.add(_fold(rel.parent / stem))
        names[i] = rel.parent / f"{stem}{rel.suffix}"
    return [names[i] for i in range(len(rel_paths))]


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
