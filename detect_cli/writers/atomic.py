"""Atomic writes: a file appears under its final name whole or not at all, and a write never goes
through a link planted at a temporary name.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a unique temporary name beside `path`, then rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "xb") rather than mkstemp: the file gets the user's umask, not mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with tmp.open("xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: name it
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def open_new(path: Path) -> int:
    """A file descriptor for a new, empty file at `path` (a temporary `.part` name), for writing.

    Whatever already has that name (a part file left by a killed run, or a symlink planted there, say
    to an input) is unlinked first, which removes a link and never its target; the open then creates
    the file or fails (O_EXCL, O_NOFOLLOW), so the write can never go through a link onto another file.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o666)  # 0o666 less the umask, as open() gives
