"""Presenting a comparison: tables, plots and the HTML, from hand-made results (no model needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from detect_cli.compare import report
from detect_cli.compare.report import gallery, html_report, make_plots, markdown, rich_tables, tables
from detect_cli.compare.results import (
    Accuracy,
    ClassAccuracy,
    ClassAgreement,
    CompareSettings,
    Comparison,
    InputAgreement,
    Memory,
    ModelInfo,
    ModelResult,
    PairAgreement,
    Picture,
    SpeedStats,
)
from detect_cli.compare.verdict import TIMES, verdict
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


def _with_memory(c: Comparison, *mb: float) -> Comparison:
    from dataclasses import replace

    models = tuple(
        replace(m, memory=Memory(v, "rss", 3, 500.0, v)) for m, v in zip(c.models, mb, strict=True)
    )
    return replace(c, models=models)


@pytest.mark.parametrize(
    ("accuracy", "expected"),
    [
        (
            False,
            f"yolo11n: 4.0{TIMES} faster, 3.0{TIMES} less memory; rtdetr-l: +13.5 mAP50-95 (published COCO "
            "val figures, not measured here); they agree on 73% of boxes over 4 images.",
        ),
        (
            True,
            f"yolo11n: 4.0{TIMES} faster, 3.0{TIMES} less memory; the same mAP50-95 on your 4 images; "
            "they agree on 73% of boxes over 4 images.",
        ),
    ],
)
def test_the_verdict_is_computed_from_the_tables(accuracy: bool, expected: str) -> None:
    c = _with_memory(_comparison(accuracy), 600.0, 200.0)
    v = verdict(c)
    [pair] = v.pairs
    assert pair.sentence == expected
    assert pair.faster == "yolo11n" and pair.speed_ratio == pytest.approx(4.0)
    assert pair.lighter == "yolo11n" and pair.memory_ratio == pytest.approx(3.0)
    assert pair.map_source == ("measured" if accuracy else "published")
    assert "4 images" in v.headline[-1]
    page = html_report(c, {}, [])
    assert page.index(expected[:20]) < page.index("<h2>Speed</h2>")
    assert "## Verdict" in markdown(c, [], []) and expected in markdown(c, [], [])
    assert report.report_dict(c)["verdict"]["pairs"][0]["sentence"] == expected


def test_untrained_models_get_no_accuracy_claim_and_a_header() -> None:
    from dataclasses import replace

    c = _comparison(True)
    models = tuple(replace(m, info=replace(m.info, untrained=True)) for m in c.models)
    c = replace(c, models=models)
    v = verdict(c)
    # Said once, at the top; the rest speaks only of speed and memory (no accuracy, no agreement).
    assert v.pairs[0].sentence == f"yolo11n: 4.0{TIMES} faster."
    assert v.headline[0].startswith("Random weights") and v.lines[0] == v.headline[0]
    assert sum("random weights" in line.casefold() for line in v.lines) == 1
    assert '<p class="warn"><b>Random weights</b> (rtdetr-l' in html_report(c, {}, [])


def test_memory_is_in_the_speed_table_and_its_plot() -> None:
    c = _with_memory(_comparison(False), 600.0, 200.0)
    speed = tables(c)[0]
    assert speed.headers[-2] == "peak MB" and [row[-2] for row in speed.rows] == ["600", "200"]
    assert "VmHWM" in speed.note and "first 3 inputs" in speed.note
    assert "memory.png" in make_plots(c) and "memory.png" not in make_plots(_comparison(False))


def test_per_class_precision_and_recall_are_in_the_tables() -> None:
    c = _comparison(True)
    [t] = [t for t in tables(c) if t.title == "Accuracy per class"]
    assert t.headers[:6] == (
        "class",
        "instances",
        "rtdetr-l mAP50-95",
        "rtdetr-l mAP50",
        "rtdetr-l P",
        "rtdetr-l R",
    )
    assert t.rows[0][:6] == ("person", "10", "50.0", "70.0", "80.0", "60.0")
    assert "rtdetr-l P" in markdown(c, [], []) and "<th>rtdetr-l R</th>" in html_report(c, {}, [])


def test_the_terminal_shows_whole_model_names() -> None:
    from dataclasses import replace

    from rich.console import Console

    c = _comparison(True)
    long = ("rtdetr_camera_left_v2", "rtdetr_camera_right_v2")
    models = tuple(replace(m, info=replace(m.info, label=n)) for m, n in zip(c.models, long, strict=True))
    pairs = (replace(c.pairs[0], a=long[0], b=long[1]),)
    c = replace(c, models=models, pairs=pairs)
    console = Console(width=80, record=True)
    for table in rich_tables(c):
        console.print(table)
    text = console.export_text()
    assert all(text.count(n) >= 2 for n in long), text  # speed and accuracy rows, uncut


def test_the_accuracy_plot_starts_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = []
    real = report._png

    def keep(plt, fig):  # type: ignore[no-untyped-def]
        limits.append(fig.axes[0].get_xlim())
        return real(plt, fig)

    monkeypatch.setattr(report, "_png", keep)
    report.plot_accuracy_vs_speed(_comparison(False))
    assert limits[0][0] == 0


def test_the_gallery_puts_the_lowest_agreement_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    rows = (("a.jpg", 0.9, 4), ("b.jpg", None, 0), ("c.jpg", 0.1, 6), ("d.jpg", 0.5, 2), ("gone.jpg", 0.0, 2))
    for name, *_ in rows[:4]:
        (tmp_path / "side-by-side").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "side-by-side" / name), np.full((40, 900, 3), 120, np.uint8))
    c = replace(_comparison(False), per_input=tuple(InputAgreement(n, n, a, b) for n, a, b in rows))
    items = gallery(c, tmp_path)
    assert [g.source for g in items] == ["c.jpg", "d.jpg", "a.jpg", "b.jpg"]  # no file for gone.jpg
    thumb = cv2.imdecode(np.frombuffer(items[0].thumbnail, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[arg-type]
    assert thumb.shape[1] == report.GALLERY_WIDTH
    page = html_report(c, {}, [], items)
    assert page.index("c.jpg: agreement 10%") < page.index("a.jpg: agreement 90%")
    assert page.count('<a href="side-by-side/') == 4 and page.count("data:image/jpeg") == 4
    monkeypatch_items = [replace(g, thumbnail=None) if k >= 2 else g for k, g in enumerate(items)]
    page = html_report(c, {}, [], monkeypatch_items)
    assert page.count("data:image/jpeg") == 2 and "2 more, linked:" in page
