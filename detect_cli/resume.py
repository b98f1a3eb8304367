"""Resuming a run: which inputs an earlier run already recorded, and keeping results.jsonl exactly-once.

An input is keyed by its absolute path (its URL for URL inputs); a record counts for it only while the
file's size and modification time are what the record says, so a changed file is redone. results.jsonl
is the commit log of a run: a record is appended (and flushed) only after every other output of that
input is in place, so a recorded input is a finished one. When an input is redone (a retried failure, a
changed file), its new record is appended after the old one: the last record for a key is the one that
counts, and `compact` rewrites the file atomically with only those at the end of a resumed run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detect_cli.rundir import REJECTED_SUFFIX, open_own
from detect_cli.sources import FileStamp, ImageInput, current_stamp, input_path
from detect_cli.writers import iter_jsonl, jsonl_line, open_new


def record_key(record: dict[str, Any]) -> str:
    return record.get("path") or record["source"]


def input_key(item: ImageInput) -> str:
    return input_path(item) or item.source


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the last record of an input says about it."""

    stamp: FileStamp | None
    ok: bool


@dataclass
class DoneIndex:
    """The inputs an earlier run recorded, by key (memory: one small entry per recorded input)."""

    records: dict[str, Recorded] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    weights: dict[str, str] = field(default_factory=dict)  # weights_sha256 -> the model name it ran as
    unweighed: int = 0  # records without weights_sha256 (written before every record carried it)
    duplicates: int = 0  # keys recorded more than once: the file needs compacting
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # not records: set aside by `compact`

    @classmethod
    def load(cls, path: Path) -> DoneIndex:
        index = cls()
        if not path.exists():
            return index
        for r in iter_jsonl(path, index.bad_lines):
            key = record_key(r)
            if key in index.records:
                index.duplicates += 1
            size, mtime = r.get("size"), r.get("mtime_ns")
            stamp = FileStamp(size, mtime) if size is not None and mtime is not None else None
            index.records[key] = Recorded(stamp, r.get("error") is None)
            if r.get("model"):
                index.models.add(r["model"])
            if r.get("weights_sha256"):
                index.weights.setdefault(r["weights_sha256"], r["model"])
            else:  # failure records too: they are kept by a resume, so they belong to its weights
                index.unweighed += 1
        return index


@dataclass
class ResumePlan:
    """The inputs still to run, and what was skipped."""

    todo: list[ImageInput]
    skipped: int = 0
    skipped_failed: int = 0  # skipped inputs whose record is a failure (`--retry-failed` redoes them)
    redone: int = 0  # inputs with a record that run again (changed, or a retried failure)
    duplicates: int = 0
    bad_lines: int = 0  # lines that are not records

    @property
    def needs_compaction(self) -> bool:
        return bool(self.redone or self.duplicates or self.bad_lines)


def plan(items: Sequence[ImageInput], index: DoneIndex, retry_failed: bool = False) -> ResumePlan:
    """Split inputs into done (recorded, unchanged, and ok unless failures are kept) and to do."""
    result = ResumePlan([], duplicates=index.duplicates, bad_lines=len(index.bad_lines))
    for item in items:
        rec = index.records.get(input_key(item))
        if rec is None:
            result.todo.append(item)
        elif rec.stamp != current_stamp(item) or (retry_failed and not rec.ok):
            result.todo.append(item)
            result.redone += 1
        else:
            result.skipped += 1
            result.skipped_failed += not rec.ok
    return result


def rejected_path(path: Path) -> Path:
    """Where `compact` keeps the lines of a results.jsonl that are not records: nothing is thrown away."""
    return path.with_name(path.name + REJECTED_SUFFIX)


def compact(path: Path) -> int:
    """Rewrite results.jsonl keeping only the last record per input, in the order they were written,
    through a temporary file and an atomic rename. Lines that are not records are appended to
    `rejected_path(path)`. Returns the number of records dropped."""
    last: dict[str, int] = {}
    for i, r in enumerate(iter_jsonl(path)):
        last[record_key(r)] = i
    keep = set(last.values())
    dropped = 0
    bad: list[tuple[int, str]] = []
    tmp = path.with_name(f".{path.name}.compact.part")
    with open(open_new(tmp), "w", encoding="utf-8") as out:  # never through a link planted there
        for i, r in enumerate(iter_jsonl(path, bad)):
            if i in keep:
                out.write(jsonl_line(r) + "\n")
            else:
                dropped += 1
        out.flush()
        os.fsync(out.fileno())
    if bad:
        rejected = rejected_path(path)
        with open(rejected, "a", encoding="utf-8", errors="surrogateescape", opener=open_own) as f:
            f.writelines(f"{text}\n" for _, text in bad)
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return dropped


def remove_partials(out: Path) -> int:
    """Delete temporary files (`.NAME….part`) left under the run folder by a killed run."""
    n = 0
    for dirpath, _dirs, files in os.walk(out):
        for name in files:
            if name.startswith(".") and name.endswith(".part"):
                Path(dirpath, name).unlink(missing_ok=True)
                n += 1
    return n
