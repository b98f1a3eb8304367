"""Reading input files: regular files only (a FIFO, socket or device is refused before it can block),
within a size limit, with the stamp (size, mtime) of exactly the bytes read.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from detect_cli.errors import InputError
from detect_cli.sources.inputs import ImageInput

MAX_FILE_BYTES = 1024**3  # an image file larger than this is refused before it is read


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Size and modification time of an input file: with its path, what resume keys an input by."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns)


def input_path(item: ImageInput) -> str | None:
    """The absolute path of a file input (as found, links not resolved); None for URLs."""
    return os.path.abspath(item.path) if item.path is not None and item.url is None else None


def current_stamp(item: ImageInput) -> FileStamp | None:
    """The stamp of a file input now; None for URLs, inputs that failed discovery, and missing files."""
    if item.error or item.path is None:
        return None
    try:
        return FileStamp.of(item.path.stat())
    except OSError:
        return None


def _missing(path: Path, loop: bool = False) -> str:
    """Why a path that cannot be opened is missing: gone, a symlink to nowhere, or a loop of links."""
    if os.path.islink(path):
        target = os.readlink(path)
        if loop:
            return f"symlink loop (it points to {target}, which leads back to itself)"
        return f"broken symlink (it points to {target}, which does not exist)"
    return "file vanished before it was read"


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"))


def _open_regular(path: Path, what: str) -> tuple[int, os.stat_result]:
    """An open descriptor of a regular file and its fstat; raises InputError saying what it is instead.

    Opened non-blocking and checked with fstat before anything is read, so a FIFO, socket or device
    that carries an image's name is refused at once instead of blocking the run for ever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise InputError(_missing(path)) from e
    except IsADirectoryError as e:
        raise InputError(f"is a folder, not an {what}") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(_missing(path, loop=True)) from e
        raise InputError(f"cannot read {what}: {e.strerror or e}") from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"is a folder, not an {what}")
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
            raise InputError(f"not a regular file ({kind}); not read")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_regular(path: Path, what: str = "file") -> os.stat_result:
    """The stat of a regular file (see `_open_regular`); raises InputError otherwise."""
    fd, st = _open_regular(path, what)
    os.close(fd)
    return st


def read_regular(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> tuple[bytes, FileStamp]:
    """The bytes of a regular file and the stamp of exactly those bytes (fstat of the open file)."""
    fd, st = _open_regular(path, what)
    try:
        if st.st_size > max_bytes:
            raise InputError(f"{what} is {st.st_size / 2**20:.0f} MiB, larger than {max_bytes / 2**20:g} MiB")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read(max_bytes + 1), FileStamp.of(st)
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or e}") from e
    finally:
        if fd >= 0:
            os.close(fd)


def read_file(path: Path) -> tuple[bytes, FileStamp]:
    """The bytes of an image file and their stamp; raises InputError (see `read_regular`)."""
    return read_regular(path)
