"""Presenting a comparison: tables, plots and the HTML, from hand-made results (no model needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from detect_cli.compare.report import html_report, make_plots, markdown, rich_tables, tables
from detect_cli.compare.results import (
    Accuracy,
    ClassAccuracy,
    ClassAgreement,
    CompareSettings,
    Comparison,
    ModelInfo,
    ModelResult,
    PairAgreement,
    Picture,
    SpeedStats,
)
from detect_cli.models import COCO_VAL_SOURCE


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
    assert [t.title for t in tables(c)][:3] == ["Speed", "What ran", "Agreement"]


def test_with_labels_the_measured_map_is_shown() -> None:
    c = _comparison(accuracy=True)
    titles = [t.title for t in tables(c)]
    assert titles[:4] == ["Speed", "What ran", "Accuracy", "Agreement"] and "Accuracy per class" in titles
    assert tables(c)[0].rows[0][-1] == "50.0"
    assert tables(c)[2].rows[0] == ("rtdetr-l", "4", "10", "50.0", "70.0", "80.0", "60.0")
    assert [t.title for t in tables(c, full=False)] == ["Speed", "Accuracy", "Agreement"]
    assert len(rich_tables(c)) == 3


def test_agreement_row() -> None:
    row = tables(_comparison(False))[2].rows[0]
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
