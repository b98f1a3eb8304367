"""Resumed runs: what is skipped, what is redone, and results.jsonl holding each input exactly once."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ, make_image

from detect_cli.errors import BadOptionError
from detect_cli.jobs import ImageJob, run_images
from detect_cli.models import PredictOptions, load, resolve
from detect_cli.resume import DoneIndex, compact, plan
from detect_cli.sources import discover_images
from detect_cli.writers import read_jsonl, repair_tail


@pytest.fixture(scope="module")
def detector(yolo_pt: Path):  # type: ignore[no-untyped-def]
    return load(resolve(str(yolo_pt), "yolo"), PredictOptions(conf=1e-6, imgsz=SMALL_IMGSZ, max_det=3))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for i in range(4):
        make_image(root / f"{i}.jpg", i)
    return root


def _go(detector, folder: Path, out: Path, **kw):  # type: ignore[no-untyped-def]
    job = ImageJob(
        (str(folder),), detector.ref, detector.options, out=out, formats=("jsonl", "csv", "txt", "coco"), **kw
    )
    report, _ = run_images(job, detector=detector)
    return report


def _sources(out: Path) -> list[str]:
    return sorted(r["source"] for r in read_jsonl(out / "results.jsonl"))


def _touch_changed(path: Path, seed: int) -> None:
    make_image(path, seed, size=(80, 120))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_records_carry_the_input_key(detector, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _go(detector, folder, tmp_path / "out")
    rec = read_jsonl(tmp_path / "out" / "results.jsonl")[0]
    st = (folder / "0.jpg").stat()
    assert (rec["path"], rec["size"], rec["mtime_ns"]) == (str(folder / "0.jpg"), st.st_size, st.st_mtime_ns)
    assert rec["source"] == str(folder / "0.jpg") and rec["error"] is None  # existing fields unchanged


def test_resume_skips_done_redoes_changed_and_adds_new(detector, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    _go(detector, folder, out)
    _touch_changed(folder / "1.jpg", 99)
    make_image(folder / "new.jpg", 7)
    report = _go(detector, folder, out, resume=True)
    assert (report.summary.processed, report.skipped) == (2, 3)
    records = read_jsonl(out / "results.jsonl")
    assert _sources(out) == sorted(str(p) for p in folder.glob("*.jpg"))  # each exactly once
    changed = next(r for r in records if r["source"].endswith("1.jpg"))
    assert (changed["width"], changed["size"]) == (120, (folder / "1.jpg").stat().st_size)
    # the tables are rebuilt from results.jsonl: the same inputs, and the redone one only once
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == sum(len(r["detections"]) for r in records) == 5 * 3
    assert len(json.loads((out / "coco_results.json").read_text())) == 15
    assert (out / "labels" / "imgs" / "new.txt").is_file()


def test_failed_inputs_are_kept_unless_retried(detector, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    broken = folder / "broken.png"
    broken.write_text("not yet a picture")
    assert _go(detector, folder, out).summary.failed == 1
    kept = _go(detector, folder, out, resume=True)
    assert (kept.summary.processed, kept.skipped, kept.skipped_failed) == (0, 5, 1)
    retried = _go(detector, folder, out, retry_failed=True)
    assert (retried.summary.failed, retried.skipped) == (1, 4)
    assert _sources(out).count(str(broken)) == 1  # the retry replaced the old record
    make_image(broken, 5)  # fixed: changed on disk, so a plain resume redoes it
    fixed = _go(detector, folder, out, resume=True)
    assert (fixed.summary.processed, fixed.summary.failed) == (1, 0)
    assert [r["error"] for r in read_jsonl(out / "results.jsonl")] == [None] * 5


def test_resume_repairs_what_a_kill_leaves(detector, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The state after a SIGKILL: a half-written last record, temporary files, no tables yet."""
    out = tmp_path / "out"
    _go(detector, folder, out)
    jsonl = out / "results.jsonl"
    lines = jsonl.read_text().splitlines(keepends=True)
    jsonl.write_text("".join(lines[:2]) + lines[2][:40])  # killed while writing the third record
    for name in ("results.csv", "coco_results.json"):
        (out / name).unlink()
    (out / "imgs" / ".2.jpg.abc.part").write_bytes(b"half")
    report = _go(detector, folder, out, resume=True)
    assert (report.summary.processed, report.skipped) == (2, 2)
    assert _sources(out) == sorted(str(p) for p in folder.glob("*.jpg"))
    assert len(jsonl.read_text().splitlines()) == 4
    assert not list(out.rglob("*.part"))
    assert (out / "results.csv").is_file() and json.loads((out / "coco_results.json").read_text())


def test_repair_tail(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    for text, expected, cut in [
        ('{"a": 1}\n{"b"', '{"a": 1}\n', True),
        ('{"a": 1}\n', '{"a": 1}\n', False),
        ('{"a"', "", True),
        ("", "", False),
    ]:
        p.write_text(text)
        assert repair_tail(p) is cut
        assert p.read_text() == expected


def test_compact_keeps_the_last_record_per_input(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    rows = [
        {"source": "a", "model": "m", "path": "/x/a", "error": "bad"},
        {"source": "b", "model": "m", "error": None},
        {"source": "a", "model": "m", "path": "/x/a", "error": None},
        {"source": "c", "model": "m", "path": "/x/c", "error": None},
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert compact(p) == 1
    assert read_jsonl(p) == rows[1:]


def test_plan_table(folder: Path, tmp_path: Path) -> None:
    """(recorded stamp, recorded ok, retry_failed) -> skipped or redone."""
    items = discover_images([str(folder)])
    st = [p.stat() for p in sorted(folder.glob("*.jpg"))]
    records = [
        {
            "source": str(folder / "0.jpg"),
            "size": st[0].st_size,
            "mtime_ns": st[0].st_mtime_ns,
            "error": None,
        },
        {
            "source": str(folder / "1.jpg"),
            "size": st[1].st_size + 1,
            "mtime_ns": st[1].st_mtime_ns,
            "error": None,
        },
        {"source": str(folder / "2.jpg"), "size": st[2].st_size, "mtime_ns": st[2].st_mtime_ns, "error": "x"},
    ]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({**r, "path": r["source"], "model": "m"}) + "\n" for r in records))
    index = DoneIndex.load(jsonl)
    keep = plan(items, index)
    assert [Path(i.source).name for i in keep.todo] == ["1.jpg", "3.jpg"]  # changed, new
    assert (keep.skipped, keep.skipped_failed, keep.redone) == (2, 1, 1)
    retry = plan(items, index, retry_failed=True)
    assert [Path(i.source).name for i in retry.todo] == ["1.jpg", "2.jpg", "3.jpg"]


def test_resume_refuses_another_model_and_needs_out(detector, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    _go(detector, folder, out)
    jsonl = out / "results.jsonl"
    jsonl.write_text(jsonl.read_text().replace('"model": "yolo11n-seed0"', '"model": "other"'))
    with pytest.raises(BadOptionError, match="holds results of other"):
        _go(detector, folder, out, resume=True)
    with pytest.raises(BadOptionError, match="--resume needs --out"):
        run_images(ImageJob((str(folder),), detector.ref, detector.options, resume=True), detector=detector)
