"""The run's record as text: results.jsonl (frames.jsonl for videos), one JSON object a line, read back
skipping what is not a record, and a last line cut short by a killed run repaired.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from detect_cli.results import BadRecord, check_record
from detect_cli.rundir import open_own

RESULTS_JSONL = "results.jsonl"  # the record of an image run
FRAMES_JSONL = "frames.jsonl"  # the record of a video run


def json_text(record: Any, indent: int | None = None) -> str:
    """JSON text, UTF-8 where it can be. A file name that is not valid UTF-8 reaches us as text with
    lone surrogates (`os.fsdecode`); such text is written with `\\udcXX` escapes instead, which is
    valid JSON and gives the exact bytes back (`os.fsencode(json.loads(line)["path"])`)."""
    text = json.dumps(record, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, indent=indent)
    return text


def jsonl_line(record: Mapping[str, Any]) -> str:
    """One line of a .jsonl file (see `json_text`)."""
    return json_text(record)


def repair_tail(path: Path) -> bool:
    """Cut a last line left half-written by a killed run (or a full disk), so appended records start on
    a line of their own. True when something was cut."""
    if not path.exists():
        return False
    with open(path, "rb+", opener=open_own) as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # Walk back in blocks to the last newline; everything after it is the broken record.
        pos, keep = size, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            nl = f.read(step).rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        f.truncate(keep)
    return True


def iter_jsonl(path: Path, bad: list[tuple[int, str]] | None = None) -> Iterator[dict[str, Any]]:
    """The records of a results.jsonl one at a time. A line that is not a record (cut short by a crash,
    garbage written by something else, or JSON of another shape: `results.check_record`) is skipped,
    and added to `bad` as (line number, text)."""
    with open(path, encoding="utf-8", errors="surrogateescape", opener=open_own) as f:
        for n, line in enumerate(f, 1):
            try:
                record = check_record(json.loads(line))
            except (json.JSONDecodeError, BadRecord):  # not JSON, or JSON of another shape
                record = None
            if record is not None:
                yield record
            elif bad is not None and line.strip():
                bad.append((n, line.rstrip("\n")))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a results.jsonl (skipping a last line cut short by a crash)."""
    return list(iter_jsonl(path))
