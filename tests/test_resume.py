"""Resumed runs: what is skipped, what is redone, and results.jsonl holding each input exactly once."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ, make_image
from typer.testing import CliRunner, Result

from detect_cli.cli import app
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


runner = CliRunner()


def _image_cli(*argv: object) -> Result:
    return runner.invoke(
        app, ["image", *(str(a) for a in argv), "--imgsz", str(SMALL_IMGSZ), "--backend", "torch"]
    )


def _error_lines(result: Result) -> list[str]:
    assert "Traceback" not in result.output, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_records_name_their_weights_and_resume_refuses_others_of_the_same_name(
    folder: Path, tmp_path: Path, yolo_pt: Path, rtdetr_pt: Path
) -> None:
    """runA/best.pt (a YOLO) begun, runB/best.pt (an RT-DETR) resumed: both `"model": "best"`. The
    records name the weights by content, and the resume is refused in one line naming them."""
    from detect_cli.backends import weights_digest

    a, b = tmp_path / "runA" / "best.pt", tmp_path / "runB" / "best.pt"
    for src, dst in ((yolo_pt, a), (rtdetr_pt, b)):
        dst.parent.mkdir()
        shutil.copy(src, dst)
    out = tmp_path / "out"
    make_image(folder / "late.jpg", 9)
    (folder / "late.jpg").rename(tmp_path / "late.jpg")  # added after the interruption
    first = _image_cli(folder, "-m", a, "-o", out)
    assert first.exit_code == 0, first.output
    recorded = read_jsonl(out / "results.jsonl")
    assert {(r["model"], r["weights_sha256"]) for r in recorded} == {("best", weights_digest(str(a)))}
    (tmp_path / "late.jpg").rename(folder / "late.jpg")
    before = (out / "results.jsonl").read_bytes()
    other = _image_cli(folder, "-m", b, "-o", out, "--resume")
    assert other.exit_code == 2, other.output
    [line] = _error_lines(other)
    assert f"was made with best (weights sha256 {weights_digest(str(a))[:12]})" in line, line
    assert str(b) in line
    assert (out / "results.jsonl").read_bytes() == before  # nothing mixed in
    same = _image_cli(folder, "-m", a, "-o", out, "--resume")
    assert same.exit_code == 0, same.output
    assert len(read_jsonl(out / "results.jsonl")) == 5


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads fail as they do without internet."""
    from ultralytics.utils import downloads

    def fail(file: str | Path, *args: object, **kwargs: object) -> Path:
        if Path(file).is_file():
            return Path(file)
        raise ConnectionError("Download failure (no internet)")

    monkeypatch.setattr(downloads, "attempt_download_asset", fail)


def test_a_run_on_random_weights_is_not_resumed_with_trained_ones(
    folder: Path, tmp_path: Path, yolo_pt: Path, no_download: None
) -> None:
    """Begun with --offline-fallback (yolo11n's random weights, from yolo11n.yaml), resumed once
    yolo11n.pt is in the cache: the same name, other weights; refused, saying they were random."""
    from detect_cli.models import get_spec, weights_path

    out = tmp_path / "out"
    begun = _image_cli(folder, "-m", "yolo11n", "--offline-fallback", "-o", out)
    assert begun.exit_code == 0, begun.output
    assert "RANDOM WEIGHTS" in begun.stderr
    spec = get_spec("yolo11n")
    assert spec is not None
    weights_path(spec).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(yolo_pt, weights_path(spec))  # the real weights arrive
    resumed = _image_cli(folder, "-m", "yolo11n", "--offline-fallback", "-o", out, "--resume")
    assert resumed.exit_code == 2, resumed.output
    [line] = _error_lines(resumed)
    assert "was made with yolo11n with random weights from yolo11n.yaml (--offline-fallback)" in line, line


def test_records_without_weights_are_resumed_by_name_with_a_warning(
    folder: Path, tmp_path: Path, yolo_pt: Path
) -> None:
    """Records written before weights were named: resumed on the model name, and said so."""
    out = tmp_path / "out"
    assert _image_cli(folder, "-m", yolo_pt, "-o", out).exit_code == 0
    jsonl = out / "results.jsonl"
    old = [{k: v for k, v in r.items() if k != "weights_sha256"} for r in read_jsonl(jsonl)]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in old))
    resumed = _image_cli(folder, "-m", yolo_pt, "-o", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "4 record(s) do not say which weights made them" in resumed.stderr


def test_failure_records_without_weights_are_counted_as_unweighed(tmp_path: Path) -> None:
    """A folder whose records are all failures, written before they named their weights, is said to be
    resumed on the model name alone; one whose failure records name them is checked by them."""
    jsonl = tmp_path / "results.jsonl"
    old = {"source": "a.jpg", "model": "best", "error": "worker failed: RayActorError: died"}
    jsonl.write_text(
        json.dumps(old) + "\n" + json.dumps({**old, "source": "b.jpg", "weights_sha256": "ab" * 32})
    )
    index = DoneIndex.load(jsonl)
    assert index.unweighed == 1 and index.weights == {"ab" * 32: "best"}
