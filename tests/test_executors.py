"""Executors: a batch on a local Ray (started by the run itself) ends as the same batch run locally."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_IMGSZ, make_image
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.writers import read_jsonl

runner = CliRunner()


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _comparable(record: dict) -> dict:  # type: ignore[type-arg]
    """A record without what legitimately differs between two runs: timings and float noise."""
    rest = {k: v for k, v in record.items() if k not in ("speed_ms", "detections")}
    return {**rest, "classes": [d["class_id"] for d in record["detections"]]}


def test_ray_run_equals_local_run(yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    pytest.importorskip("openvino")
    import ray

    monkeypatch.chdir(tmp_path)  # relative paths, as users type them: workers must still find the files
    folder = Path("imgs")
    for i in range(10):  # numeric names: COCO image ids do not depend on the order records arrive
        make_image(folder / f"{i:03d}.jpg", i)
    (folder / "099.png").write_text("not a picture")
    common = ["yolo", "image", str(folder), "-m", str(yolo_pt), "--imgsz", str(SMALL_IMGSZ)]
    common += ["--conf", "1e-6", "--max-det", "4", "-f", "csv", "-f", "txt", "-f", "coco", "-q"]
    # OpenVINO: each Ray worker plans the backend on its node and loads the node's cached export (made
    # by the local run here; test_backends covers a worker's planning and the one-export-at-a-time lock).
    common += ["--backend", "openvino"]

    local = runner.invoke(app, [*common, "-o", "local"])
    on_ray = runner.invoke(
        app, [*common, "-o", "ray", "--executor", "ray", "--ray-workers", "2", "--batch", "2"]
    )
    assert not ray.is_initialized(), "the run shuts down the Ray it started"
    assert local.exit_code == on_ray.exit_code == 1, on_ray.output  # the broken file fails on both
    a, b = tmp_path / "local", tmp_path / "ray"
    assert _files(a) == _files(b)

    rec_a = {r["source"]: r for r in read_jsonl(a / "results.jsonl")}
    rec_b = {r["source"]: r for r in read_jsonl(b / "results.jsonl")}
    assert len(rec_b) == len(read_jsonl(b / "results.jsonl")) == 11  # each input once, in any order
    assert {k: _comparable(r) for k, r in rec_a.items()} == {k: _comparable(r) for k, r in rec_b.items()}
    for source in rec_a:
        boxes = [[d["xyxy"] for d in x[source]["detections"]] for x in (rec_a, rec_b)]
        assert np.allclose(*boxes, atol=0.05), source

    def rows(out: Path) -> list[tuple[str, str, str]]:
        return sorted(
            (r["source"], r["class_id"], r["error"]) for r in csv.DictReader((out / "results.csv").open())
        )

    def coco(out: Path) -> list[tuple[int, int]]:
        return sorted(
            (d["image_id"], d["category_id"]) for d in json.loads((out / "coco_results.json").read_text())
        )

    assert rows(a) == rows(b) and coco(a) == coco(b)
    for label in (a / "labels").rglob("*.txt"):
        other = (b / label.relative_to(a)).read_text().split()
        assert np.allclose(np.array(label.read_text().split(), float), np.array(other, float), atol=1e-3)


def test_missing_ray_is_one_line_exit_2(
    rtdetr_pt: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    argv = ["image", str(images), "-m", str(rtdetr_pt), "--executor", "ray", "-o", str(tmp_path / "o")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: --executor ray needs the ray package: pip install 'detect-cli[ray]' (on every node)"
    ]
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_shard_no_worker_finished_is_recorded_as_failed_and_retried_only_on_request(
    images: Path, tmp_path: Path
) -> None:
    from detect_cli.executors import _failed
    from detect_cli.resume import DoneIndex, plan
    from detect_cli.sources import discover_images
    from detect_cli.writers import JsonlWriter

    items = discover_images([str(images)])
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        for r in _failed(items, "m", "worker failed: RayActorError: the actor died"):
            sink.write(r, r.source, None)  # type: ignore[arg-type]
    index = DoneIndex.load(tmp_path / "results.jsonl")
    assert plan(items, index).todo == [] and plan(items, index).skipped_failed == 4
    assert plan(items, index, retry_failed=True).todo == items
