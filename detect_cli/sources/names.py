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


def unique_stems(named: Sequence[tuple[PurePosixPath, str]], folders: bool = False) -> list[PurePosixPath]:
    """The rule, on (name without its suffix, the input's suffix) pairs: each input's output name
    without a suffix, no two alike ignoring case, and none whose output files (the name and a suffix)
    would be a folder some input's outputs live in.

    An input keeps its name (photos/x) unless another input of the run has that name too, ignoring
    case (x.jpg beside x.png, y.jpg beside Y.JPG, a.mp4 beside A.mov), or a folder of the outputs is
    that name with a suffix (the folder a.txt/ of a.txt/x.png, where a.png's labels/a.txt would go;
    with `folders`, inputs whose outputs include a folder of their name, as a video's frames do, the
    frames a.mp4/ of a.mp4.mov, where a.avi's video a.mp4 would go); then each of them keeps its suffix
    in the name (photos/x.jpg, photos/x.png, a.avi), and a name still taken gets -2, -3 … before the
    suffix, in the order of the paths sorted. The names depend only on the set of inputs, not on
    their order, so a resumed run names its inputs as the first did. The suffix is given apart from
    the name because not every name has one (a stream's `streams/10.0.0.5_live` has none to drop).
    """
    by_stem = Counter(_fold(stem) for stem, _ in named)
    # The names the folders of the outputs take from files: a.mp4/ takes a (a.mp4, a.txt … are files).
    dirs = {d for stem, _ in named for d in stem.parents if d.name}
    if folders:
        dirs |= {stem for stem, _ in named}
    blocked = {_fold(d.with_suffix("")) for d in dirs if d.suffix}
    names: dict[int, PurePosixPath] = {}
    named_range = range(len(named))
    taken: set[str] = set()
    for i, (stem, _) in enumerate(named):
        if by_stem[_fold(stem)] == 1 and _fold(stem) not in blocked:
            names[i] = stem
            taken.add(_fold(stem))

    def free(name: PurePosixPath) -> bool:
        if _fold(name) in taken or _fold(name) in blocked:
            return False
        return not (folders and name.suffix and _fold(name.with_suffix("")) in taken)  # its folder

    shared = sorted((i for i in named_range if i not in names), key=lambda i: f"{named[i][0]}{named[i][1]}")
    for i in shared:
        stem, suffix = named[i]
        name, n = stem.name + suffix, 1
        while not free(stem.parent / name):
            n += 1
            name = f"{stem.name}-{n}{suffix}"
        names[i] = stem.parent / name
        taken.add(_fold(names[i]))
        if folders and names[i].suffix:
            blocked.add(_fold(names[i].with_suffix("")))
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
