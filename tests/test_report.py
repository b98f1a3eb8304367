"""Presenting a comparison: tables, plots and the HTML, from hand-made results (no model needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from conftest import read_video

from detect_cli.compare import (
    Accuracy,
    ClassAccuracy,
    ClassAgreement,
    CompareSettings,
    Comparison,
    ModelInfo,
    ModelResult,
    PairAgreement,
    SpeedStats,
)
from detect_cli.models import COCO_VAL_SOURCE
from detect_cli.pipeline import Frame
from detect_cli.report import CompareOutputs, Picture, html_report, make_plots, markdown, rich_tables, tables
from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl


def _model(label: str, ms: float, published: float | None, accuracy: Accuracy | None = None) -> ModelResult:
    info = ModelInfo(
        label, label, "rtdetr" if "detr" in label else "yolo", f"{label}.pt", published is not None, False,
        80, 32.0, 100.0, "cpu", "torch", "fp32", 640, published, COCO_VAL_SOURCE if published else None,
    )  # fmt: skip
    speed = SpeedStats(4, 1.0, ms - 2, 1.0, ms, ms, ms * 1.1, 1000 / ms)
    return ModelResult(info, speed, 4, 0, 7, {"person": 5, "car": 2}, accuracy)


def _comparison(accuracy: bool) -> Comparison:
    acc = (
        Accuracy(0.5, 0.7, 0.8, 0.6, 0.25, 0.001, 4, 10, (ClassAccuracy("person", 10, 0.5, 0.7, 0.8, 0.6),))
        if accuracy
        else None
    )
    agree = ClassAgreement("person", 4, 1, 2, 0.8)
    return Comparison(
        CompareSettings(),
        (_model("rtdetr-l", 120.0, 53.0, acc), _model("yolo11n", 30.0, 39.5, acc)),
        (PairAgreement("rtdetr-l", "yolo11n", 4, agree, (agree,)),),
        ("person", "car"),
        inputs=4,
        failed=(),
    )


def test_without_labels_the_published_map_is_shown_and_labelled() -> None:
    c = _comparison(accuracy=False)
    speed = tables(c)[0]
    assert [row[-1] for row in speed.rows] == ["53.0 (published)", "39.5 (published)"]
    assert "not measured here" in speed.note and COCO_VAL_SOURCE in speed.note
    assert "accuracy_vs_speed.png" in make_plots(c)
    assert [t.title for t in tables(c)][:2] == ["Speed", "Agreement"]


def test_with_labels_the_measured_map_is_shown() -> None:
    c = _comparison(accuracy=True)
    titles = [t.title for t in tables(c)]
    assert titles[:3] == ["Speed", "Accuracy", "Agreement"] and "Accuracy per class" in titles
    assert tables(c)[0].rows[0][-1] == "50.0"
    assert tables(c)[1].rows[0] == ("rtdetr-l", "4", "10", "50.0", "70.0", "80.0", "60.0")
    assert [t.title for t in tables(c, full=False)] == ["Speed", "Accuracy", "Agreement"]
    assert len(rich_tables(c)) == 3


def test_agreement_row() -> None:
    row = tables(_comparison(False))[1].rows[0]
    assert row == ("rtdetr-l vs yolo11n", "4", "1", "2", "72.7", "0.800")  # 2*4 / (5 + 6)


@pytest.mark.parametrize("accuracy", [False, True])
def test_plots_are_pngs(accuracy: bool) -> None:
    for name, png in make_plots(_comparison(accuracy)).items():
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] > 400, name


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action", "data")]


def external_refs(text: str) -> list[str]:
    """Everything an HTML page would fetch or link to that is not inside the page itself."""
    parser = _Refs()
    parser.feed(text)
    css = re.findall(r"url\(([^)]*)\)|@import\s+([^;]+)", text)
    return [r for r in parser.refs if not r.startswith(("data:", "#"))] + [a or b for a, b in css]


def test_html_is_self_contained() -> None:
    c = _comparison(accuracy=True)
    _, jpeg = cv2.imencode(".jpg", np.zeros((8, 16, 3), np.uint8))
    page = html_report(c, make_plots(c), [Picture("a.jpg", jpeg.tobytes())])
    parser = _Refs()
    parser.feed(page)
    assert parser.tags.count("img") == 3 + 1 and "script" not in parser.tags
    assert external_refs(page) == []
    assert external_refs('<img src="https://x/y.png"><a href="http://z">z</a>') == [
        "https://x/y.png",
        "http://z",
    ]


def test_markdown_links_plots_and_pictures() -> None:
    text = markdown(_comparison(True), ["plots/speed.png"], ["side-by-side/a.jpg"])
    assert "![speed](plots/speed.png)" in text and "![a.jpg](side-by-side/a.jpg)" in text
    assert "| rtdetr-l | 32.0 | 100.0 |" in text


def test_side_by_side_video_keeps_every_frame(tmp_path: Path) -> None:
    """A frame a model failed on stays in the video (its panel says so), so the video keeps the source's
    frames and timing; report.html keeps only the pictures asked for, also written as .jpg."""
    codec = pick_codec()
    outputs = CompareOutputs(tmp_path, ["a", "b"], picture_indexes=[1], video_fps={"v.mp4": 5.0}, codec=codec)
    image = np.zeros((48, 64, 3), np.uint8)
    box = (Detection(0, "x", 0.9, (1.0, 1.0, 20.0, 20.0)),)
    for i in range(3):
        frame = Frame("v.mp4", PurePosixPath("v", f"{i:06d}.jpg"), image, frame=i, time_s=i / 5)
        ok = ImageResult("v.mp4", "a", 64, 48, Speed(1, 2, 3), box, frame=i, time_s=i / 5)
        failed = ImageResult("v.mp4", "b", 64, 48, error="inference failed: boom", frame=i, time_s=i / 5)
        outputs(frame, [ok, failed if i == 1 else ok])
    outputs.close()
    assert outputs.videos == [tmp_path / "side-by-side" / f"v{codec.suffix}"]
    assert read_video(outputs.videos[0]) == (3, 2 * 64, 48, 5.0)
    assert [p.source for p in outputs.pictures] == ["v.mp4, frame 1"]
    assert [p.name for p in (tmp_path / "side-by-side" / "v").iterdir()] == ["000001.jpg"]
    rows = read_jsonl(tmp_path / "detections" / "b.jsonl")
    assert [r["frame"] for r in rows] == [0, 1, 2] and rows[1]["error"] == "inference failed: boom"
