"""Model choices as users meet them: a transformer, a CNN and a hybrid compared, and a first run
without internet (`--offline-fallback`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ
from typer.testing import CliRunner

from detect_cli.cli import app

runner = CliRunner()
FAST = ["--imgsz", str(SMALL_IMGSZ), "--warmup", "0", "--device", "cpu", "--backend", "torch", "--no-memory"]


def _report(out: Path) -> list[dict]:  # type: ignore[type-arg]
    return [m["info"] for m in json.loads((out / "report.json").read_text())["models"]]


def test_compare_a_transformer_a_cnn_and_a_hybrid(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    models = "rtdetr-l.yaml,yolo11n.yaml,yolo26n.yaml"
    result = runner.invoke(app, ["compare", str(images), "-m", models, *FAST, "-o", str(out), "--iou", "0.5"])
    assert result.exit_code == 0, result.output
    infos = _report(out)
    assert [i["name"] for i in infos] == ["rtdetr-l", "yolo11n", "yolo26n"]
    assert [i["family"] for i in infos] == ["rtdetr", "yolo", "yolo"]
    # --iou does nothing for the NMS-free ones (RT-DETR, YOLO26): said once each, not for YOLO11
    assert "rtdetr-l is NMS-free" in result.stderr and "yolo26n is NMS-free" in result.stderr
    assert "yolo11n is NMS-free" not in result.stderr


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Downloads fail as they do without internet; the names asked for are recorded."""
    from ultralytics.utils import downloads

    asked: list[str] = []

    def fail(file: str | Path, *args: object, **kwargs: object) -> Path:
        if Path(file).is_file():  # as the real one: a file that is there is used
            return Path(file)
        asked.append(Path(file).name)
        raise ConnectionError("Download failure for https://github.com/... (no internet)")

    monkeypatch.setattr(downloads, "attempt_download_asset", fail)
    return asked


def test_offline_fallback_runs_the_configs_and_says_so_once_per_model(
    images: Path, tmp_path: Path, no_download: list[str]
) -> None:
    out = tmp_path / "out"
    argv = ["compare", str(images), "--offline-fallback", "-m", "rtdetr-l,yolo11n", *FAST, "-o", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert sorted(no_download) == ["rtdetr-l.pt", "yolo11n.pt"]
    for name in ("rtdetr-l", "yolo11n"):
        assert result.stderr.count(f"RANDOM WEIGHTS: cannot get {name}.pt for {name}") == 1
        assert f"runs {name}.yaml instead" in result.stderr
    cache = Path(__import__("os").environ["DETECT_CACHE_DIR"]) / "weights"
    assert f"put rtdetr-l.pt in {cache}/" in result.stderr
    assert "is a model config: its weights are random" not in result.stderr  # said once, not twice
    infos = _report(out)
    assert [(i["name"], i["location"], i["untrained"], i["official"]) for i in infos] == [
        ("rtdetr-l", "rtdetr-l.yaml", True, False),
        ("yolo11n", "yolo11n.yaml", True, False),
    ]


def test_without_the_flag_a_missing_download_is_one_line_and_exit_2(
    images: Path, tmp_path: Path, no_download: list[str]
) -> None:
    argv = ["compare", str(images), "-m", "rtdetr-l,yolo11n", *FAST, "-o", str(tmp_path / "out")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot get weights for rtdetr-l" in result.stderr


def test_offline_fallback_uses_weights_in_the_cache(
    images: Path, tmp_path: Path, yolo_pt: Path, no_download: list[str]
) -> None:
    """Weights already in the cache folder are the model: nothing is downloaded or replaced."""
    from ultralytics import YOLO

    from detect_cli.models import coco_names, get_spec, weights_path

    spec = get_spec("yolo11n")
    assert spec is not None
    weights_path(spec).parent.mkdir(parents=True, exist_ok=True)
    official = YOLO(str(yolo_pt))  # as the released yolo11n.pt: COCO's class names, as the stand-in's
    official.model.names = coco_names()
    official.save(weights_path(spec))
    out = tmp_path / "out"
    argv = ["compare", str(images), "--offline-fallback", "-m", "rtdetr-l,yolo11n", *FAST, "-o", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert no_download == ["rtdetr-l.pt"] and "RANDOM WEIGHTS" in result.stderr
    assert "cannot get yolo11n.pt" not in result.stderr
    yolo = _report(out)[1]
    assert (yolo["location"], yolo["untrained"], yolo["official"]) == (str(weights_path(spec)), False, True)


def test_offline_stand_ins_carry_the_official_class_names(
    tmp_path: Path, no_download: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels named with COCO's classes meet the stand-ins of COCO models: before, the configs' classes
    were "0" … "79" and the comparison stopped ('the labels share no class names with the models').
    Their side-by-side pictures say RANDOM WEIGHTS over each model's panel."""
    from labeled_data import TINY_BOXES, write_dataset

    from detect_cli import render

    titles: list[str] = []
    real = render.draw_title
    monkeypatch.setattr(render, "draw_title", lambda image, title: titles.append(title) or real(image, title))

    data = write_dataset(tmp_path / "ds", TINY_BOXES, ("person", "bicycle", "car"))
    out = tmp_path / "out"
    argv = ["compare", str(data.images), "--data", str(data.data_yaml), "--offline-fallback", *FAST]
    result = runner.invoke(app, [*argv, "-m", "rtdetr-l,yolo11n", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "share no class names" not in result.output
    report = json.loads((out / "report.json").read_text())
    assert "accuracy" in json.dumps(report)
    assert len(titles) == 2 * 4 and all("RANDOM WEIGHTS" in t for t in titles), titles


def test_explain_offline_fallback_runs_the_configs_and_pictures_say_random_weights(
    images: Path, tmp_path: Path, no_download: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect_cli.explain import draw

    titles: list[str] = []
    real = draw.draw_title
    monkeypatch.setattr(draw, "draw_title", lambda image, title: titles.append(title) or real(image, title))
    out = tmp_path / "out"
    argv = ["explain", str(images / "top.png"), "--offline-fallback", "--imgsz", str(SMALL_IMGSZ)]
    result = runner.invoke(app, [*argv, "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(no_download) == ["rtdetr-l.pt", "yolo11n.pt"]
    assert (out / "top.jpg").is_file()
    assert len(titles) == 3 and all("RANDOM WEIGHTS" in t for t in titles), titles
    assert "scale" not in result.stderr  # ultralytics' 'no model scale passed' is not said
