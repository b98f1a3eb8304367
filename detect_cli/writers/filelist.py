"""A run's list of the files it writes into its folder, so that `--exist-ok` replaces exactly what an
earlier run of the same command wrote there and never a file it did not write (`detect compare`'s
`.compare-files.jsonl`, `detect explain`'s `.explain-files.jsonl`)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import IO

from detect_cli.errors import OutputError
from detect_cli.writers.atomic import open_new
from detect_cli.writers.jsonl import json_text


class FileList:
    """The files a run writes into `out`, each listed (a JSON string a line, flushed) before it is
    written, the list itself (`out / name`) made first: so a folder holding it holds such a run,
    complete or killed, and `remove_listed` removes exactly what that run wrote there."""

    def __init__(self, out: Path, name: str) -> None:
        self.out = out
        self.path = out / name
        self._seen: set[str] = set()
        try:
            self._f: IO[str] = open(open_new(self.path), "w", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from e

    def add(self, *paths: Path) -> None:
        new = [rel for p in paths if (rel := p.relative_to(self.out).as_posix()) not in self._seen]
        if not new:
            return
        self._seen.update(new)
        try:
            self._f.write("".join(json_text(rel) + "\n" for rel in new))
            self._f.flush()
        except OSError as e:  # a full disk: the run cannot go on without knowing what it wrote
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from e

    def close(self) -> None:
        with contextlib.suppress(OSError):  # every line was flushed when added
            self._f.close()

    def __enter__(self) -> FileList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_listed(out: Path, name: str) -> int:
    """Delete the files an earlier run listed in `out / name` and the folders they leave empty, then
    the list. An entry that would lead out of `out`, or through a symlinked folder, is passed over; so
    is anything but a file or a link. Returns the number removed."""
    listed = out / name
    if not listed.exists():
        return 0
    root = os.path.realpath(out)
    removed = 0
    folders: set[Path] = set()
    with listed.open(encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            rel = PurePosixPath(entry) if isinstance(entry, str) else None
            if rel is None or rel.is_absolute() or not rel.parts or ".." in rel.parts:
                continue
            path = out.joinpath(*rel.parts)
            if os.path.realpath(path.parent) != os.path.join(root, *rel.parts[:-1]):
                continue  # a folder on the way is a link: what it leads to is not the run's
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                path.unlink()
                removed += 1
                folders.update(p for p in path.parents if p != out and out in p.parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: it holds something else
            folder.rmdir()
    listed.unlink()
    return removed
