"""Sinks: fed one result at a time, so nothing accumulates in memory. Every file but the run's record is
written to a temporary name and renamed into place; the record (results.jsonl) is appended and
flushed per input, after that input's other outputs are written: it is the run's commit log (see
resume.py). A full disk ends the run in one line; any other failure of an input's outputs fails that
input alone (`SinkGroup`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from detect_cli.errors import OutputError
from detect_cli.results import ImageResult
from detect_cli.rundir import open_own

if TYPE_CHECKING:
    import numpy as np
from detect_cli.writers.atomic import open_new
from detect_cli.writers.ids import ImageIds
from detect_cli.writers.jsonl import FRAMES_JSONL, RESULTS_JSONL, iter_jsonl, jsonl_line, repair_tail

Failure = tuple[ImageResult, ImageResult]  # (the result as inferred, the failure record that replaced it)


class Sink:
    """Base sink: `write` one result (with its decoded image when there is one), `close` at the end."""

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output; called once, also when the run is interrupted."""

    def failures(self) -> list[Failure]:
        """Inputs whose outputs could not be written, recorded as failed instead (see SinkGroup)."""
        return []

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LineFile(Sink):
    """A text file appended to and flushed per input."""

    def __init__(self, path: Path, mode: str = "w") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "a":
            repair_tail(path)  # a cut last line (a killed run, a full disk) must not swallow the next
        self._f: IO[str] = open(path, mode, encoding="utf-8", newline="", opener=open_own)

    def _flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class WholeFile(Sink):
    """A file streamed to a temporary name and renamed into place at `close`; an error inside the
    `with` block discards it instead, so the final name only ever holds a complete file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        # A name that is not UTF-8 (lone surrogates) is written with backslash escapes: the table stays
        # valid UTF-8; results.jsonl keeps the exact name.
        self._f: IO[str] = open(
            open_new(self._tmp), "w", encoding="utf-8", newline="", errors="backslashreplace"
        )

    def _finish(self) -> None:
        """Write what closes the file (a footer, say) before it is renamed."""

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._finish()
            self._f.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._f.closed:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                self._f.close()
        self._tmp.unlink(missing_ok=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class JsonlWriter(LineFile):
    """results.jsonl: one JSON object per input (or frame), the record of the run.

    A run's record (results.jsonl, frames.jsonl; `image_ids` says otherwise) gives each record its COCO
    `image_id` (`ImageIds`, seeded from the records already there), so the tables built from it, after
    a resumed run too, name every image by one id. `fresh` starts the file empty instead of appending.
    """

    def __init__(
        self,
        path: Path,
        echo: Callable[[str], None] | None = None,
        image_ids: bool | None = None,
        fresh: bool = False,
    ) -> None:
        if fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(open_new(path))  # a new file: never through a link left at the name
        super().__init__(path, "a")
        self._echo = echo
        self._ids: ImageIds | None = None
        if image_ids if image_ids is not None else path.name in (RESULTS_JSONL, FRAMES_JSONL):
            self._ids = ImageIds()
            for record in iter_jsonl(path):
                self._ids.note(record)

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        record = result.to_dict()
        if self._ids is not None:
            record["image_id"] = self._ids.assign(record)
        self.write_record(record)

    def write_record(self, record: Mapping[str, Any]) -> None:
        """One line, flushed; the line goes to `echo` too (`--json`)."""
        line = jsonl_line(record)
        try:
            self._f.write(line + "\n")
            self._flush()
            vanished = os.fstat(self._f.fileno()).st_nlink == 0
        except OSError as e:  # the run's record: without it nothing is done, so the run ends here
            if e.errno in RUN_FAULTS:
                raise run_fault(OSError(e.errno, e.strerror, str(self.path)), self.path) from e
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from e
        if vanished:  # records written on would be lost with the deleted file
            raise OutputError(f"{self.path} was deleted while the run wrote it (its folder removed?)")
        if self._echo:
            self._echo(line)


# Errors that are the run's own, not one input's: the disk (or the quota) is full, the file system
# went read-only. They end the run with one line instead of failing every input after them.
RUN_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def run_fault(e: OSError, record: Path | None) -> OutputError:
    """The one-line error that ends a run on a full disk (or a read-only one): what failed and, for an
    image run (its record is results.jsonl), how to finish it once there is room: every input recorded
    so far stays done."""
    where = f" {e.filename}" if e.filename else ""
    message = f"cannot write{where}: {e.strerror or e}; the run stopped"
    if record is None or record.name == RESULTS_JSONL:
        kept = f"the inputs recorded in {record} are done" if record else "the inputs recorded are done"
        message += f" ({kept}): make room, then rerun the same command with --resume to finish it"
    return OutputError(message)


class SinkGroup(Sink):
    """Several sinks fed as one, in order: wrapped in one ThreadedSink they keep their order (an input's
    record is still written after its files) while all the writing moves off the run loop.

    `outputs` are an input's own files; `records` (results.jsonl) come after them. When an output
    cannot be written for one input (a name the file system refuses, no permission in a sub-folder,
    an image too large for its format), that input is recorded as failed, with the reason, and the run
    goes on; a failure of a record sink is the run's own and is raised.
    """

    def __init__(self, outputs: Sequence[Sink], records: Sequence[Sink] = ()) -> None:
        self.outputs = list(outputs)
        self.records = list(records)
        self._failures: list[Failure] = []

    @property
    def sinks(self) -> list[Sink]:
        return [*self.outputs, *self.records]

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        final = result
        for sink in self.outputs:
            try:
                sink.write(result, rel_path, image)
            except Exception as e:  # any writer's failure is this input's, not the run's
                if isinstance(e, OSError) and e.errno in RUN_FAULTS:
                    raise run_fault(e, self._record_path) from e
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).strip()
                final = replace(
                    result,
                    detections=(),
                    speed_ms=None,
                    error=f"cannot write its outputs: {type(e).__name__}: {reason.splitlines()[0]}",
                )
                self._failures.append((result, final))
                break
        for sink in self.records:
            sink.write(final, rel_path, image)

    @property
    def _record_path(self) -> Path | None:
        return next((s.path for s in self.records if isinstance(s, JsonlWriter)), None)

    def close(self) -> None:
        close_all(self.sinks, self._record_path)

    def failures(self) -> list[Failure]:
        return list(self._failures)


def close_all(sinks: Sequence[Sink], record: Path | None = None) -> None:
    """Close every sink, even when one fails; then raise the first failure as one line (with the way to
    finish the run when the disk is full)."""
    errors = []
    for s in sinks:
        try:
            s.close()
        except OSError as e:
            errors.append(e)
    if errors:
        if errors[0].errno in RUN_FAULTS:
            raise run_fault(errors[0], record) from errors[0]
        raise OutputError(f"could not finish writing outputs: {errors[0]}") from errors[0]
