"""The run folder: created (or reused with --exist-ok), held by one run at a time, never overlapping
the inputs.

Three rules, checked before any work is done, each refused in one line (exit code 2):
- **one writer per folder**: a run holds an exclusive lock (`flock`) on `<out>/.detect.lock` for as
  long as it runs; a second run into the same folder is refused, naming the first one's pid. The lock
  goes with the process, however it ends, so a killed run never leaves a stale lock behind.
- **never onto an input**: no output path may be an input file (followed through symlinks and hard
  links), and `--out` may not be a source folder itself; an `--out` inside a source folder is left out
  of discovery (see `sources.is_run_folder`).
- **never over a stranger's file**: in a folder that holds no earlier run, an output path that already
  exists belongs to the user (a dataset's ground-truth labels, say) and is not replaced.
- **never through a link**: the run's own files (the lock, the record, its `.rejected` lines, the
  compacted record's temporary) are opened without following a symbolic link (`O_NOFOLLOW`), and a
  folder where one of them is a link, a folder, a FIFO or a device is refused before anything is read
  or written: a link left at `.detect.lock` must not make the run's pid overwrite the file it points to,
  and a FIFO must not hang the run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from detect_cli.errors import OutputError
from detect_cli.sources import RUN_MARKER, ImageInput, VideoInput, is_run_folder, names_a_list

try:
    import fcntl
except ImportError:  # not on Windows: runs there are not protected against each other
    fcntl = None  # type: ignore[assignment]

DEFAULT_RUNS_DIR = Path("detect-runs")
REJECTED_SUFFIX = ".rejected"  # beside the record: its lines that are not records, set aside


def own_files(folder: Path, record: str) -> list[Path]:
    """The run's bookkeeping files in `folder`: the lock, the record, the record's rejected lines and
    the temporary its compaction writes."""
    return [
        folder / RUN_MARKER,
        folder / record,
        folder / (record + REJECTED_SUFFIX),
        folder / f".{record}.compact.part",
    ]


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _not_a_run_file(path: Path, mode: int) -> OutputError:
    what = _kind(mode)
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            what += f" (to {os.readlink(path)})"
    return OutputError(
        f"{path} is {what}, not a file a detect run wrote: a run writes its own files there and never "
        "through one; remove it, or choose another --out"
    )


def check_own_files(folder: Path, record: str) -> None:
    """Refuse (OutputError) a run folder where a bookkeeping file is anything but a regular file."""
    for path in own_files(folder, record):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OutputError(f"cannot read {path}: {e.strerror or e}") from e
        if not stat.S_ISREG(mode):
            raise _not_a_run_file(path, mode)


def open_own(path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """`os.open` for the run's own files, and `open(..., opener=open_own)`: never through a symbolic
    link (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), and a regular file or an OutputError."""
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | extra, mode)
    except OSError as e:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):  # ELOOP (a link), EISDIR, ENXIO (a FIFO with no reader)
                raise _not_a_run_file(Path(path), st.st_mode) from e
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_a_run_file(Path(path), st.st_mode)
    if extra & getattr(os, "O_NONBLOCK", 0):
        os.set_blocking(fd, True)  # a regular file: back to ordinary writes
    return fd


def _new_numbered(base: Path, name: str) -> Path:
    """base/name, or base/name-2, -3 ...: the first that does not exist, created (atomically, so two
    runs started at once never get the same one)."""
    n = 1
    while True:
        candidate = base / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
        except OSError as e:
            raise OutputError(f"cannot create output folder {candidate}: {e.strerror or e}") from e


def _lock(folder: Path) -> int:
    """Hold `folder`'s lock file for this process; raises OutputError when another run holds it."""
    path = folder / RUN_MARKER
    try:
        fd = open_own(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot write in output folder {folder}: {e.strerror or e}") from e
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held: another run is writing here
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise OutputError(
            f"{folder} is in use by another detect run (pid {holder}): wait for it to finish, "
            "or choose another --out"
        ) from None
    except OSError:  # a file system without locks (some network mounts): the run goes on unguarded
        return fd
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def run_folder(
    out: Path | None, run_name: str, exist_ok: bool = False, record: str = "results.jsonl"
) -> Iterator[Path]:
    """The run folder, locked for the duration of the `with` block: `out` as given, or a new
    detect-runs/<run_name>[-N].

    A given folder that already holds a run (its `record` file) is refused unless `exist_ok` (then
    results are added to it); one in use by another run is refused always.
    """
    if out is None and not exist_ok:
        created = _first_missing(DEFAULT_RUNS_DIR)
        folder = _new_numbered(DEFAULT_RUNS_DIR, run_name)
        created = created or folder
    else:
        folder = out or DEFAULT_RUNS_DIR / run_name
        created = _first_missing(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create output folder {folder}: {e.strerror or e}") from e
    try:
        check_own_files(folder, record)
        fd = _lock(folder)
    except BaseException:
        _remove_if_unused(folder, created)
        raise
    try:
        if out is not None and not exist_ok and (folder / record).exists():
            raise OutputError(
                f"{out} already holds a run; pass --exist-ok to add to it, or choose another --out"
            )
        yield folder
    except BaseException:
        # A run that fails before it writes anything (Ray out of reach, a model that will not load)
        # leaves no folder of its own behind: only the lock would be there.
        _remove_if_unused(folder, created)
        raise
    finally:
        os.close(fd)  # releases the lock; the file stays as the folder's mark


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (what mkdir(parents=True)
    will create), or None when `folder` exists."""
    missing = None
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing = path
    return missing


def _remove_if_unused(folder: Path, created: Path | None) -> None:
    """Remove `folder` and the parents this run created (down from `created`) when the run wrote nothing
    there: the folder holds its lock file at most. A folder that was there before is left alone."""
    if created is None:
        return
    try:
        names = os.listdir(folder)
    except OSError:
        return
    if names not in ([], [RUN_MARKER]):
        return
    with contextlib.suppress(OSError):
        if names:
            (folder / RUN_MARKER).unlink()  # still locked by this process: no other run is in there
        for path in (folder, *folder.parents):
            path.rmdir()  # fails, and stops, at a folder that is not empty
            if path == created:
                break


def planned_folder(out: Path | None, run_name: str, exist_ok: bool) -> Path | None:
    """The folder a run will write into when it can be known before it starts: `out`, or with
    `exist_ok` the reused detect-runs/<run_name>; None for a new numbered folder (empty by birth)."""
    if out is not None:
        return out
    return DEFAULT_RUNS_DIR / run_name if exist_ok else None


def holds_run(folder: Path, record: str) -> bool:
    """The folder holds an earlier run (its record, or the lock file any run leaves)."""
    return (folder / record).exists() or is_run_folder(folder)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def check_plan(
    out: Path | None,
    sources: Sequence[str],
    inputs: Sequence[ImageInput | VideoInput],
    outputs: Iterable[Path],
    record: str = "results.jsonl",
) -> None:
    """Refuse (OutputError, exit code 2) a run that would write onto an input, into a source folder, or
    over a file no run wrote. `outputs` are the paths the run will write (run files and per-input
    files) below `out`; nothing is checked for a new numbered folder, which cannot hold anything yet.
    """
    if out is None:
        return
    real_out = os.path.realpath(out)
    for source in sources:
        if not names_a_list(source) and "://" not in source and os.path.isdir(source):
            if os.path.realpath(source) == real_out:
                raise OutputError(
                    f"--out {out} is a source folder: outputs would be mixed with the inputs "
                    "(and read as inputs next time); choose another --out"
                )
    if not out.exists():
        return
    check_own_files(out, record)
    ours = holds_run(out, record)
    taken: dict[tuple[int, int], Path] | None = None  # input files by identity, made on first need
    for path in itertools.chain(own_files(out, record), outputs):
        ident = _identity(path)
        if ident is None:
            continue  # a new file: nothing to overwrite
        if taken is None:
            taken = {}
            for item in inputs:
                if item.path is not None and item.url is None and (i := _identity(item.path)):
                    taken[i] = item.path
        if ident in taken:
            shown, target = _shown(taken[ident]), _shown(path)
            also = f" (as {target})" if target != shown else ""
            raise OutputError(f"--out {out} would overwrite the input {shown}{also}; choose another --out")
        if not ours:
            raise OutputError(
                f"--out {out} would overwrite {_shown(path)}, which no detect run wrote "
                "(the folder holds no earlier run); choose an empty or new --out"
            )
