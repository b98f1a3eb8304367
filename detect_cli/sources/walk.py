"""Walking folders for inputs: sorted, depth first, symlink loops noted, run folders never entered;
where a glob pattern starts.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from detect_cli.sources.inputs import IMAGE_SUFFIXES

RUN_MARKER = ".detect.lock"  # in every run folder: discovery never walks into one (see rundir.py)


def dir_label(path: Path) -> str:
    return path.resolve().name or "root"


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """A folder the walk could not enter (recorded as a failed input) or a symlink loop (a warning)."""

    path: Path
    message: str
    loop: bool = False


def _is_dir(entry: os.DirEntry[str]) -> bool | None:
    """entry.is_dir(), following symlinks; None for a link that cannot be resolved (a loop, say)."""
    try:
        return entry.is_dir()
    except OSError:
        return None


RUN_RECORDS = ("results.jsonl", "frames.jsonl", "report.json")  # what runs of older versions left


def is_run_folder(path: str | Path) -> bool:
    """A folder a detect run wrote into: it holds a run's lock file, or its record."""
    return any(os.path.lexists(os.path.join(path, name)) for name in (RUN_MARKER, *RUN_RECORDS))


def walk_files(
    root: Path,
    recursive: bool,
    problems: list[WalkProblem] | None = None,
    suffixes: frozenset[str] = IMAGE_SUFFIXES,
    skip: frozenset[str] = frozenset(),
) -> Iterator[Path]:
    """Image files below root, sorted, depth first, one folder listing in memory at a time.

    Symlinked folders are followed, each real folder once: a link back to a folder already on the walk
    (a loop) is skipped and noted. A folder that cannot be listed is noted, never fatal. Sub-folders
    that are run folders (this run's `--out`, named in `skip` by real path, or any earlier run's) are
    not walked: a run never takes its own outputs for inputs.
    """
    problems = problems if problems is not None else []
    try:
        st = root.stat()
        seen = {(st.st_dev, st.st_ino)}
    except OSError:
        seen = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problems.append(WalkProblem(folder, f"cannot read folder: {e.strerror or e}"))
            continue
        subdirs = []
        for entry in entries:
            is_dir = _is_dir(entry)
            if is_dir is None:  # unresolvable link: a file-like name is still tried, and its read reports it
                if Path(entry.name).suffix.lower() in suffixes:
                    yield Path(entry.path)
            elif is_dir:
                if not recursive:
                    continue
                try:
                    st = entry.stat()
                except OSError as e:
                    problems.append(WalkProblem(Path(entry.path), f"cannot read folder: {e.strerror or e}"))
                    continue
                ident = (st.st_dev, st.st_ino)
                if os.path.realpath(entry.path) in skip or is_run_folder(entry.path):
                    continue
                if ident in seen:
                    problems.append(
                        WalkProblem(
                            Path(entry.path),
                            f"symlink loop (or a second link): {entry.path} leads to "
                            f"{os.path.realpath(entry.path)}, already walked; not followed",
                            loop=True,
                        )
                    )
                    continue
                seen.add(ident)
                subdirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in suffixes:
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


def under_skipped(path: Path, base: Path, skip: frozenset[str]) -> bool:
    """A glob match inside a run folder (below the pattern's fixed part) is an output, not an input."""
    try:
        parts = path.parent.relative_to(base).parts
    except ValueError:
        return False
    folder = base
    for part in parts:
        folder = folder / part
        if os.path.realpath(folder) in skip or is_run_folder(folder):
            return True
    return False


def split_pattern(path: Path) -> tuple[Path, str]:
    """(the folder a pattern starts from, the pattern to expand). Leading parts that exist on disk are
    taken literally, '[', '*' and '?' in their names included ('shots [2024]/*.jpg'); outputs mirror
    paths below the folder, which ends before the first wildcard."""
    parts = path.parts
    n = 0
    while n < len(parts) and os.path.lexists(Path(*parts[: n + 1])):
        n += 1
    while n < len(parts) and not glob.has_magic(parts[n]):
        n += 1
    if n == 0:
        return Path("."), str(path)
    base = Path(*parts[:n])
    return base, os.path.join(glob.escape(str(base)), *parts[n:])
