"""Presenting a comparison: tables, plots and the HTML, from hand-made results (no model needed)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from detect_cli.compare import report, report_gallery, report_plots
from detect_cli.compare.accuracy import Accuracy, ClassAccuracy
from detect_cli.compare.model_facts import ModelInfo
from detect_cli.compare.report import gallery, html_report, make_plots, markdown, rich_tables, tables
from detect_cli.compare.results import (
    ClassAgreement,
    CompareSettings,
    Comparison,
    InputAgreement,
    Memory,
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
    plots = make_plots(c)
    assert "overview.png" in plots and "accuracy_vs_speed.png" not in plots  # nothing measured to plot
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


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(parser.parts)


def external_refs(text: str) -> list[str]:
    """Everything an HTML page would fetch or link to that is not inside the page itself."""
    parser = _Refs()
    parser.feed(text)
    css = re.findall(r"url\(([^)]*)\)|@import\s+([^;]+)", text)
    return [r for r in parser.refs if not r.startswith(("data:", "#"))] + [a or b for a, b in css]


def test_html_is_self_contained() -> None:
    c = _comparison(accuracy=True)
    _, jpeg = cv2.imencode(".jpg", np.zeros((8, 16, 3), np.uint8))
    plots = make_plots(c)
    page = html_report(c, plots, [Picture("a.jpg", jpeg.tobytes())])
    parser = _Refs()
    parser.feed(page)
    assert parser.tags.count("img") == len(plots) + 1  # every plot once (the first screen's not repeated)
    assert parser.tags.count("script") == 2  # the viewer's data and its inline script, no src
    assert external_refs(page) == []
    assert external_refs('<img src="https://x/y.png"><a href="http://z">z</a>') == [
        "https://x/y.png",
        "http://z",
    ]


def test_markdown_links_plots_and_pictures() -> None:
    c = _comparison(True)
    text = markdown(c, make_plots(c), side=["side-by-side/a b.jpg"])
    assert "](plots/speed.png)" in text and "](plots/overview.png)" in text and "data:" not in text
    assert "![a b.jpg](side-by-side/a%20b.jpg)" in text
    assert "| counted on |" not in text and "No value for counted on: left out." in text  # unknown here
    assert "| rtdetr-l | rtdetr | torch | fp32 | 640 | class-wise NMS at its IoU | 32.00 | 100.0 |" in text
    assert "|---|---|---|---|--:|---|--:|--:|" in text  # words left, numbers right


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
    pick = (
        f"Pick yolo11n for speed (4.0{TIMES} faster here (p50)), rtdetr-l for accuracy (+13.5 mAP50-95 "
        "(published COCO figures, not measured here))."
        if not accuracy
        else f"Pick yolo11n when speed matters: 4.0{TIMES} faster here (p50) with the same mAP50-95."
    )
    page = html_report(c, {}, [])
    assert page.index(html.escape(pick)) < page.index("<h2>Speed</h2>")
    assert f"<th>Memory (peak)</th><td>yolo11n, 3.0{TIMES} less</td>" in page
    text = markdown(c, {})
    assert text.index("## Verdict") < text.index(pick) < text.index("## Speed")
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
    page = html_report(c, make_plots(c), [])
    assert '<p class="band"><b>Random weights:</b> rtdetr-l, yolo11n: built from a config' in page
    # Said once, in its band: not again in the verdict, the run's lines or a note.
    assert _visible_text(page).lower().count("random weights") == 1
    assert markdown(c, make_plots(c)).lower().count("random weights") == 1


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
    assert "rtdetr-l P" in markdown(c, {}) and "<th class=n>rtdetr-l R</th>" in html_report(c, {}, [])


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
    real = report_plots._png

    def keep(plt, fig):  # type: ignore[no-untyped-def]
        limits.append(fig.axes[0].get_xlim())
        return real(plt, fig)

    monkeypatch.setattr(report_plots, "_png", keep)
    report_plots.plot_accuracy_vs_speed(_comparison(True))
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
    assert thumb.shape[1] == report_gallery.GALLERY_WIDTH
    page = html_report(c, {}, [], items)
    assert page.index('alt="c.jpg"') < page.index('alt="d.jpg"') < page.index('alt="a.jpg"')
    assert "agreement 10%, 6 boxes" in page and page.count('class="thumb" href="side-by-side/') == 4
    assert page.count("data:image/jpeg") == 4  # the sources are not files here: thumbnails only
    monkeypatch_items = [replace(g, thumbnail=None) if k >= 2 else g for k, g in enumerate(items)]
    page = html_report(c, {}, [], monkeypatch_items)
    assert page.count("data:image/jpeg") == 2 and "2 more, linked:" in page


def _record(source: str, ms: float, boxes: list[tuple[float, ...]], size=(200, 100), **extra) -> str:  # type: ignore[no-untyped-def]
    detections = [{"class_id": 0, "class_name": "person", "confidence": 0.9, "xyxy": list(b)} for b in boxes]
    speed = {"preprocess": 1.0, "inference": ms - 2, "postprocess": 1.0}
    record = {"source": source, **extra, "width": size[0], "height": size[1], "speed_ms": speed}
    return json.dumps({**record, "detections": detections, "error": None}) + "\n"


def _viewer_data(page: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', page, re.S)
    assert found, "the viewer's data is in the page"
    return json.loads(found.group(1))


def test_the_viewer_draws_each_models_boxes_over_the_input_itself(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    source = tmp_path / "in" / "p.jpg"
    source.parent.mkdir()
    cv2.imwrite(str(source), np.full((100, 200, 3), 90, np.uint8))
    (tmp_path / "side-by-side").mkdir()
    cv2.imwrite(str(tmp_path / "side-by-side" / "p.jpg"), np.full((120, 400, 3), 120, np.uint8))
    (tmp_path / "detections").mkdir()
    (tmp_path / "detections" / "rtdetr-l.jsonl").write_text(_record(str(source), 43, [(10, 20, 50, 80)]))
    (tmp_path / "detections" / "yolo11n.jsonl").write_text(_record(str(source), 12, []))
    c = replace(_comparison(False), per_input=(InputAgreement(str(source), "p.jpg", 0.0, 1),))
    [item] = gallery(c, tmp_path)
    assert [(m.label, m.ms, m.boxes) for m in item.models] == [
        ("rtdetr-l", 43.0, ((10.0, 20.0, 50.0, 80.0, "person", 0.9),)),
        ("yolo11n", 12.0, ()),
    ]
    picture = cv2.imdecode(np.frombuffer(item.picture, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[arg-type]
    assert picture.shape[:2] == (100, 200) and item.size == (200, 100)  # the input, without the panels
    page = html_report(c, {}, [], [item])
    assert "rtdetr-l: 43 ms, 1 box<br>" in page.replace("\n", "") and "yolo11n: 12 ms, 0 boxes" in page
    [view] = _viewer_data(page)["items"]
    assert view["size"] == [200, 100] and view["src"].startswith("data:image/jpeg;base64,")
    assert view["models"][0]["boxes"] == [[10.0, 20.0, 50.0, 80.0, "person", 0.9]]
    # The input replaced by a picture of another shape since the run: its boxes would not fit it, so the
    # viewer shows the side-by-side picture instead.
    cv2.imwrite(str(source), np.full((200, 100, 3), 90, np.uint8))
    [item] = gallery(c, tmp_path)
    assert item.picture is None and item.models[0].boxes


def test_a_video_frame_is_captioned_with_its_frame_and_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from conftest import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=16, size=(100, 200))
    (tmp_path / "side-by-side" / "clip").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "side-by-side" / "clip" / "000012.jpg"), np.full((120, 400, 3), 9, np.uint8))
    (tmp_path / "detections").mkdir()
    for label in ("rtdetr-l", "yolo11n"):
        records = "".join(_record(str(clip), 20, [], frame=k, time_s=k / 10) for k in range(16))
        (tmp_path / "detections" / f"{label}.jsonl").write_text(records)
    row = InputAgreement(str(clip), "clip/000012.jpg", None, 0, 12, 1.2)
    [item] = gallery(replace(_comparison(False), per_input=(row,)), tmp_path)
    assert item.where == "frame 12, 0:01.20" and item.models[0].ms == 20.0
    assert item.picture is not None  # frame 12, read again from the video
    page = html_report(replace(_comparison(False), per_input=(row,)), {}, [], [item])
    assert "<b>" + html.escape(str(clip)) + "</b> · frame 12, 0:01.20" in page
    assert _viewer_data(page)["items"][0]["title"].endswith(", frame 12, 0:01.20")


def _no_boxes(c: Comparison) -> Comparison:
    from dataclasses import replace

    nothing = ClassAgreement("all", 0, 0, 0, None)
    models = tuple(replace(m, detections=0, detections_per_class={}) for m in c.models)
    return replace(c, models=models, pairs=(replace(c.pairs[0], overall=nothing, per_class=()),))


def test_nothing_empty_is_shown_and_the_page_says_why() -> None:
    from dataclasses import replace

    c = _no_boxes(_comparison(False))
    c = replace(
        c, models=tuple(replace(m, info=replace(m.info, params_m=None, gflops=None)) for m in c.models)
    )
    plots = make_plots(c)
    assert "detections_per_class.png" not in plots and "memory.png" not in plots
    titles = {t.title: t for t in tables(c)}
    assert (
        not titles["Detections per class"].rows
        and "no model found a box" in titles["Detections per class"].why
    )
    ran = titles["What ran"]
    assert "params M" not in ran.headers and "GFLOPs" not in ran.headers and "counted on" not in ran.headers
    assert "No value for params M, GFLOPs, counted on: left out." in ran.note
    page = html_report(c, plots, [])
    assert "<h2>Detections per class</h2>" not in page and "<h2>Agreement per class" not in page
    assert "Left out: Agreement per class: rtdetr-l vs yolo11n (no box at conf ≥ 0.25" in page
    assert "Detections per class (no model found a box at conf ≥ 0.25)" in page
    for table in re.findall(r"<table>.*?</table>", page, re.S):  # no header-only table, no empty column
        assert "<tbody><tr>" in table and "<td class=n>—</td>" not in table.replace("\n", "")


def test_each_model_keeps_one_colour_and_latency_is_the_p50(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from matplotlib.colors import to_hex

    c = _comparison(False)
    many = replace(
        c,
        models=tuple(replace(c.models[0], info=replace(c.models[0].info, label=f"m{k}")) for k in range(12)),
    )
    assert len(set(report_plots.model_colors(many).values())) == 12
    figures = []
    real = report_plots._png

    def keep(plt, fig):  # type: ignore[no-untyped-def]
        ax = fig.axes[0]
        figures.append((ax.get_title(), ax.get_xlabel(), [to_hex(p.get_facecolor()) for p in ax.patches],
                        [p.get_width() for p in ax.patches], ax.get_legend()))  # fmt: skip
        return real(plt, fig)

    monkeypatch.setattr(report_plots, "_png", keep)
    c = replace(
        c, models=(c.models[0], replace(c.models[1], speed=replace(c.models[1].speed, latency_mean_ms=99.0)))
    )
    report_plots.plot_speed(c)
    report_plots.plot_detections_per_class(c)
    colors = report_plots.model_colors(c)
    (_, xlabel, bars, widths, _), (_, _, class_bars, _, legend) = figures
    assert "p50" in xlabel and "mean" not in xlabel
    assert widths == [30.0, 120.0]  # the p50s (yolo11n's mean is 99: not plotted), top to bottom reversed
    assert bars == [colors["yolo11n"], colors["rtdetr-l"]]
    assert set(class_bars) == set(colors.values()) and len(set(colors.values())) == 2
    assert [to_hex(h.get_facecolor()) for h in legend.legend_handles] == list(colors.values())


def test_the_overview_places_models_among_their_published_families(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from detect_cli.models import PUBLISHED_SIZE, REGISTRY

    assert {s.name for s in REGISTRY} == set(PUBLISHED_SIZE)
    seen = []
    real = report_plots._png

    def keep(plt, fig):  # type: ignore[no-untyped-def]
        seen.append(
            [(ln.get_label(), list(ln.get_xdata()), list(ln.get_ydata())) for ln in fig.axes[0].lines]
        )
        seen.append([(col.get_label(), col.get_offsets().tolist()) for col in fig.axes[0].collections])
        return real(plt, fig)

    monkeypatch.setattr(report_plots, "_png", keep)
    c = _comparison(True)
    untrained = replace(
        c.models[0], info=replace(c.models[0].info, untrained=True, official=False, published_map50_95=None)
    )
    report_plots.plot_overview(replace(c, models=(untrained, c.models[1])))
    lines, dots = seen
    assert [label for label, *_ in lines] == ["RT-DETR (published)", "YOLO11 (published)"]
    assert lines[1][1] == [6.5, 21.5, 68.0, 86.9, 194.9] and lines[1][2] == [39.5, 47.0, 51.5, 53.4, 54.7]
    # The untrained stand-in sits where the trained rtdetr-l is published; yolo11n's star is its mAP here.
    assert ("rtdetr-l (untrained)", [[110.0, 53.0]]) in dots and (
        "yolo11n, on your labels",
        [[6.5, 50.0]],
    ) in dots
    first = _comparison(False).models[0]
    custom = replace(first, info=replace(first.info, name="mine", label="mine", official=False))
    assert (
        report_plots.plot_overview(replace(_comparison(False), models=(custom,))) is None
    )  # nothing to place


def test_the_templates_are_package_data() -> None:
    """A wheel carries the templates: pyproject's package-data names every file the report reads."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["detect_cli.compare"]
    files = [
        p.relative_to(root / "detect_cli" / "compare").as_posix()
        for p in (root / "detect_cli/compare/templates").iterdir()
    ]
    assert {
        "templates/report.html",
        "templates/report.md",
        "templates/report.css",
        "templates/viewer.js",
    } <= set(files)
    assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files), (files, patterns)
    assert "jinja2>=3.1" in config["project"]["dependencies"]


@pytest.mark.parametrize(
    ("ms", "published", "pick"),
    [
        # (rtdetr-l, yolo11n) p50 ms, (rtdetr-l, yolo11n) published mAP50-95: the pick ("x" for TIMES)
        ((120, 30), (53.0, 39.5), "Pick yolo11n for speed (4.0x faster here (p50)), rtdetr-l for accuracy"),
        ((30, 120), (53.0, 39.5), "Pick rtdetr-l: 4.0x faster here (p50) and +13.5 mAP50-95"),
        ((30, 30.5), (53.0, 39.5), "Pick rtdetr-l: +13.5 mAP50-95 (published COCO figures, not measured"),
        ((120, 30), (40.0, 40.0), "Pick yolo11n when speed matters: 4.0x faster here (p50) with the same"),
        ((30, 30.5), (40.0, 40.0), "rtdetr-l and yolo11n are about as fast as each other."),
    ],
)
def test_the_verdict_names_the_model_to_pick(
    ms: tuple[float, float], published: tuple[float, float], pick: str
) -> None:
    from dataclasses import replace

    from detect_cli.compare import report_summary

    c = _comparison(False)
    models = tuple(
        replace(m, speed=replace(m.speed, latency_p50_ms=t), info=replace(m.info, published_map50_95=p))
        for m, t, p in zip(c.models, ms, published, strict=True)
    )
    [row] = report_summary.summary(replace(c, models=models))
    assert row["pick"].startswith(pick.replace("x faster", f"{TIMES} faster")), row["pick"]


def test_each_warning_is_one_band() -> None:
    from dataclasses import replace

    from detect_cli.compare import report_summary

    c = _comparison(False)
    assert report_summary.bands(c) == []
    shapes = ((640, 640), (480, 640))
    models = tuple(
        replace(m, info=replace(m.info, backend=b, input_shape=s))
        for m, b, s in zip(c.models, ("openvino", "torch"), shapes, strict=True)
    )
    c = replace(c, models=models, interrupted=True)
    assert [b["title"] for b in report_summary.bands(c)] == ["Inputs differ", "Interrupted"]
    page = html_report(c, {}, [])
    assert page.count('<p class="band">') == 2 and _visible_text(page).count("differently shaped") == 1


def test_a_report_file_that_cannot_be_written_is_one_designed_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A folder where report.html goes (its rename fails for real, EISDIR): an OutputError naming the
    file, its reason and where the measurements are, not an unexpected OSError; what came before it is
    whole and no temporary file is left."""
    from detect_cli.errors import ExitCode, OutputError

    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)
    with pytest.raises(OutputError) as e:
        report.write_report(_comparison(False), out)
    message = str(e.value)
    assert message.startswith(f"cannot write {out / 'report.html'}: Is a directory;"), message
    assert f"the measurements are in {out / 'detections'}" in message and "\n" not in message
    assert e.value.exit_code == ExitCode.CANNOT_RUN
    assert json.loads((out / "report.json").read_text())["inputs"] == 4  # written before it, whole
    assert not list(out.rglob("*.part"))


@pytest.mark.parametrize("boxes", [0, 3])
def test_the_score_plots_are_left_out_when_no_model_kept_a_box(boxes: int) -> None:
    """Random weights keep no box: two flat lines at zero would say nothing, so the plot is left out."""
    from dataclasses import replace

    import numpy as np

    from detect_cli.compare.analysis import Analysis, ModelAnalysis
    from detect_cli.compare.bootstrap import interval
    from detect_cli.compare.boxes import boxes_per_picture
    from detect_cli.compare.operating import score_profile

    c = _comparison(accuracy=False)
    scores = [[0.3 + 0.1 * k for k in range(boxes)], []]
    models = tuple(
        ModelAnalysis(
            m.info.label,
            interval("p50 ms", "level", 30.0, np.full(10, 30.0), 4),
            boxes_per_picture([], 0.25),
            scores=score_profile(m.info.label, scores),
        )
        for m in c.models
    )
    c = replace(c, analysis=Analysis(2, False, 10, 0, models, ()))
    plots = make_plots(c)
    assert ("scores.png" in plots) == bool(boxes)
    page = html_report(c, plots, [])
    assert ("Operating points, plotted" in page) == bool(boxes)


def test_the_overview_of_models_of_ones_own_says_only_what_it_shows() -> None:
    """Models trained by the user are in no published family: the overview has stars on their labels and
    its note speaks of no family line; official models keep the lines and their note."""
    from dataclasses import replace

    from detect_cli.compare.report_summary import overview_note

    acc = Accuracy(0.4, 0.6, 0.7, 0.5, 0.25, 0.001, 4, 10, (ClassAccuracy("person", 10, 0.4, 0.6, 0.7, 0.5),))
    own = (_model("rtdetr-shapes", 120.0, None, acc), _model("yolo-shapes", 30.0, None, acc))
    c = replace(_comparison(accuracy=True), models=own)
    assert "overview.png" in make_plots(c)
    note = overview_note(c)
    assert note.startswith("Stars: mAP50-95 measured on your labels") and "Lines:" not in note, note
    assert overview_note(_comparison(accuracy=True)).startswith("Lines: each family's sizes")
