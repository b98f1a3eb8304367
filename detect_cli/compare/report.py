"""Presenting a `Comparison`: report.json, report.md, a self-contained report.html (plots and pictures
embedded as base64, no external reference), PNG plots, and the terminal tables. What is written during
the run (detections, side-by-side pictures and videos) is outputs.py's.

Data is shaped in Python, markup lives in templates (`templates/`: `report.html`, `report.md`, with
`report.css` and the viewer's `viewer.js` inlined; Jinja2, HTML autoescaped). `page()` turns the
comparison into one plain dict, from the same `Comparison` report.json carries, and both documents are
rendered from it:

- the first screen (`report_summary`): what ran where, the bands (random weights, ...), the verdict as
  a pick per pair with its figures, and the overview plot;
- `sections`: the rest of the page, in order, each a dict with an `id`, a `title` and a `kind` (`table`,
  `plots`, `lines`, `figures`, `videos`, `gallery`) plus that kind's data.

Adding a section (a new table or plot, say) is one entry in `sections()`: a `TableData` from
`report_tables` or, for the analysis, `report_analysis` (both set in order by `tables()`, reached through
`table()`), or a plot from `report_plots.make_plots` (through `figures()`).
A new kind of section is one macro in each template and its line in the template's `kinds` map.
Tables are built once as plain rows (`report_tables`) and rendered to Markdown, HTML and the terminal
alike; a column without values, a table without rows and a plot without data are left out, saying why.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.compare import report_summary as first_screen
from detect_cli.compare.fidelity import fidelity_lines
from detect_cli.compare.report_analysis import analysis_tables
from detect_cli.compare.report_gallery import (
    GALLERY_NOTE,
    HTML_PICTURE_WIDTH,
    GalleryItem,
    gallery,
    small_jpeg_file,
)
from detect_cli.compare.report_plots import draw_plots, make_plots, model_colors
from detect_cli.compare.report_tables import (
    TableData,
    environment_lines,
    input_shapes_differ,
    measured_tables,
    memory_note,
    numeric_columns,
    rich_table,
    run_lines,
    without_empty_columns,
)
from detect_cli.compare.results import DETECTIONS, Comparison, Picture
from detect_cli.compare.verdict import verdict
from detect_cli.errors import OutputError
from detect_cli.writers import atomic_write_bytes, json_text

if TYPE_CHECKING:
    import jinja2
    from rich.table import Table

__all__ = [
    "HTML_PICTURES",
    "HTML_PICTURE_WIDTH",
    "REPORT_FILES",
    "REPORT_RECORD",
    "GalleryItem",
    "TableData",
    "draw_plots",
    "gallery",
    "html_report",
    "input_shapes_differ",
    "make_plots",
    "markdown",
    "memory_note",
    "report_dict",
    "rich_tables",
    "tables",
    "terminal_lines",
    "write_report",
]

REPORT_FILES = ("report.json", "report.md", "report.html")
REPORT_RECORD = "report.json"  # a folder holding it holds a comparison
HTML_PICTURES = 4  # side-by-side pictures embedded in report.html (all of them are written as files)
MD_GALLERY_LINKS = 200  # side-by-sides listed in report.md
EXPLAIN_NOTE = (
    "Per picture: RT-DETR's decoder sampling points for each detection (where its last decoder layer "
    "looked, sized by weight) | RT-DETR's encoder attention from each box centre | the YOLO model's "
    "EigenCAM activation map. See `detect explain --help`."
)


def report_dict(c: Comparison) -> dict[str, object]:
    """report.json: the comparison with its verdict."""
    return {"verdict": verdict(c).to_dict(), **c.to_dict()}


def tables(c: Comparison, full: bool = True) -> list[TableData]:
    """The report's tables in order, the measurements' (report_tables) then the analysis'
    (report_analysis), columns without a value left out; `full=False` gives the key ones for the terminal."""
    return [without_empty_columns(t) for t in (*measured_tables(c, full), *analysis_tables(c, full))]


def rich_tables(c: Comparison) -> list[Table]:
    """The key tables for the terminal."""
    return [rich_table(t) for t in tables(c, full=False) if t.rows]


def terminal_lines(c: Comparison) -> list[str]:
    """The verdict and the machine, in a few lines, for the terminal above the tables."""
    v = verdict(c)
    lines = ["Verdict:", *(f"  {line}" for line in v.lines)]
    if c.environment:
        lines.append(f"On: {environment_lines(c.environment)[0]}")
    if input_shapes_differ(c):
        lines.append("Warning: the models' inputs differ in shape (see report.html, What ran)")
    return lines


# --- the page: one dict both templates render --------------------------------------------------------


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _href(path: str) -> str:
    """A relative link to a file beside the report (each path segment percent-encoded)."""
    return urllib.parse.quote(path, safe="/")


def _md_link(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _poster(video_path: str, pictures: Sequence[Picture]) -> Picture | None:
    """A kept picture of this video (the kept pictures' captions start with their source)."""
    stem = Path(video_path).name
    return next((p for p in pictures if Path(p.source.split(", frame ")[0]).name in stem), None) or (
        pictures[0] if pictures else None
    )


def _videos(c: Comparison, pictures: Sequence[Picture]) -> list[dict[str, Any]]:
    v = c.video
    if v is None:
        return []
    out = []
    for path in v.side_by_side:
        poster = _poster(path, pictures) if v.playable else None
        out.append(
            {
                "path": path,
                "href": _href(path),
                "codec": v.codec or "",
                "playable": v.playable,
                "poster": _data_uri(poster.jpeg, "image/jpeg") if poster else None,
            }
        )
    return out


def _table(t: TableData) -> dict[str, Any]:
    return {
        "headers": t.headers,
        "rows": t.rows,
        "numeric": numeric_columns(t),
        "note": t.note,
        "why": t.why,
    }


def _plot(name: str, png: bytes, alt: str) -> dict[str, str]:
    return {"name": name, "path": f"plots/{name}", "src": _data_uri(png, "image/png"), "alt": alt}


def _gallery_item(g: GalleryItem, index: int | None) -> dict[str, Any]:
    return {
        "index": index,
        "source": g.source,
        "where": g.where,
        "path": g.path,
        "href": _href(g.path),
        "text": g.agreement_text,
        "thumbnail": _data_uri(g.thumbnail, "image/jpeg") if g.thumbnail else None,
        "models": [
            {"label": m.label, "ms": m.ms, "boxes": len(m.boxes), "failed": m.failed} for m in g.models
        ],
    }


def _viewer(items: Sequence[GalleryItem]) -> list[dict[str, Any]]:
    """What the viewer's script draws: per input, its picture and each model's boxes."""
    return [
        {
            "title": g.source + (f", {g.where}" if g.where else ""),
            "href": _href(g.path),
            "text": g.agreement_text,
            "src": _data_uri(g.picture, "image/jpeg") if g.picture else None,
            "size": g.size,
            "models": [
                {"label": m.label, "ms": m.ms, "failed": m.failed, "boxes": m.boxes} for m in g.models
            ],
        }
        for g in items
        if g.thumbnail
    ]


def sections(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture],
    items: Sequence[GalleryItem],
    explained: Sequence[Path],
    root: Path | None = None,
) -> list[dict[str, Any]]:
    """The page below its first screen, in order: each section is a `kind` (a macro in the templates)
    and its data. A new section is one entry here; a new kind of section one macro in each template."""
    by_title = {t.title: t for t in tables(c)}
    # A table without rows is no section: one line under Agreement says why it is left out.
    empty = [f"{t.title} ({t.why})" for t in by_title.values() if not t.rows]
    by_title = {title: t for title, t in by_title.items() if t.rows}
    out: list[dict[str, Any]] = []

    def table(title: str, key: str | None = None) -> None:
        if (t := by_title.pop(title, None)) is not None:
            out.append({"id": key or _slug(title), "title": title, "kind": "table", **_table(t)})

    def figures(key: str, title: str, names: Sequence[str], note: str = "") -> None:
        shown = [_plot(n, plots[n], PLOT_ALT[n]) for n in names if n in plots]
        if shown:
            out.append({"id": key, "title": title, "kind": "plots", "plots": shown, "note": note})

    if c.fidelity:  # --backends: each variant against PyTorch fp32, unsafe ones marked
        out.append(_fidelity(c))
    table("Speed")
    figures("speed-plots", "Speed and memory", ["speed.png", "memory.png"])
    table("Accuracy")
    figures("accuracy-plot", "Accuracy vs speed", ["accuracy_vs_speed.png"])
    table("Agreement")
    table("How sure each figure is", "intervals")
    table("Fair operating points", "operating-points")
    table("Boxes per picture as the threshold moves", "thresholds")
    figures("operating-plots", "Operating points, plotted", ["operating_points.png", "scores.png"])
    table("Where each model wins", "slices")
    table("Where they agree", "slices")
    table("Error types", "errors")
    table("Duplicate audit (NMS-free models)", "duplicates")
    if empty and out:
        out[-1]["note"] = f"{out[-1]['note']} Left out: {'; '.join(empty)}.".strip()
    if items:
        out.append(_gallery(items))
    elif pictures:
        out.append(_side_by_side(pictures))
    if videos := _videos(c, pictures):
        out.append({"id": "video", "title": "Side-by-side video", "kind": "videos", "videos": videos})
    for title in [t for t in by_title if t != "What ran"]:
        table(title)
    figures("class-plot", "Detections per class, plotted", ["detections_per_class.png"])
    table("What ran")
    out.append({"id": "run", "title": "Run", "kind": "lines", "lines": run_lines(c)})
    if c.environment:
        lines = environment_lines(c.environment)
        out.append({"id": "environment", "title": "Environment", "kind": "lines", "lines": lines})
    if explained:
        out.append(_explained(explained, root))
    return out


def _fidelity(c: Comparison) -> dict[str, Any]:
    """--backends: each variant against PyTorch fp32, unsafe ones marked (fidelity's own words)."""
    assert c.fidelity is not None
    head, *rows = fidelity_lines(c.fidelity)
    return {
        "id": "fidelity",
        "title": "Fidelity",
        "kind": "lines",
        "lines": [head, *(r.strip() for r in rows)],
    }


def _gallery(items: Sequence[GalleryItem]) -> dict[str, Any]:
    """The inputs where the models disagree most: those with a thumbnail shown, the rest linked."""
    shown = [g for g in items if g.thumbnail]
    return {
        "id": "gallery",
        "title": "Where they disagree",
        "kind": "gallery",
        "note": GALLERY_NOTE.format(thumbs=len(shown)),
        "items": [_gallery_item(g, k) for k, g in enumerate(shown)],
        "rest": [_gallery_item(g, None) for g in items[len(shown) :]],
        "md_links": MD_GALLERY_LINKS,
    }


def _side_by_side(pictures: Sequence[Picture]) -> dict[str, Any]:
    """The kept side-by-side pictures, embedded (when there is no gallery)."""
    shown = [{"name": p.source, "src": _data_uri(p.jpeg, "image/jpeg")} for p in pictures]
    return {"id": "pictures", "title": "Side by side", "kind": "figures", "figures": shown}


def _explained(explained: Sequence[Path], root: Path | None) -> dict[str, Any]:
    """--explain's pictures, scaled down and embedded, each linked to its file."""
    shown = [
        {"name": p.name, "path": _relative(p, root), "src": _data_uri(data, "image/jpeg")}
        for p in explained
        if (data := small_jpeg_file(p))
    ]
    return {
        "id": "explain",
        "title": "Where each model looked (--explain)",
        "kind": "figures",
        "note": EXPLAIN_NOTE,
        "figures": shown,
    }


PLOT_ALT = {
    "overview.png": "mAP50-95 against GFLOPs: the compared models among their families' published sizes",
    "speed.png": "p50 latency per model",
    "memory.png": "peak memory per model",
    "accuracy_vs_speed.png": "mAP50-95 on the labels against p50 latency",
    "detections_per_class.png": "detections per class by model",
    "operating_points.png": "precision-recall curves and F1 against the threshold, every model",
    "scores.png": "score histograms and boxes per picture against the threshold, every model",
}


def _relative(path: Path, root: Path | None) -> str:
    try:
        return path.relative_to(root).as_posix() if root else path.name
    except ValueError:
        return path.as_posix()


def _slug(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")


def page(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture] = (),
    items: Sequence[GalleryItem] = (),
    explained: Sequence[Path] = (),
    root: Path | None = None,
) -> dict[str, Any]:
    """Everything the templates show, as plain data: the first screen (what ran, the bands, the
    verdict, the overview plot) and the `sections` below it."""
    colors = model_colors(c)
    hero = next((n for n in ("overview.png", "speed.png") if n in plots), None)
    below = {n: png for n, png in plots.items() if n != hero}  # the first screen's plot is not repeated
    return {
        "title": " vs ".join(m.info.label for m in c.models),
        "facts": first_screen.facts(c),
        "bands": first_screen.bands(c),
        "summary": first_screen.summary(c),
        "choose": [*verdict(c).summary],  # "Choose X if …", from settled figures only
        "warnings": [*verdict(c).warnings],
        "hero": _plot(hero, plots[hero], PLOT_ALT[hero]) if hero else None,
        "hero_note": first_screen.overview_note(c) if hero == "overview.png" else "",
        "models": [{"label": m.info.label, "color": colors[m.info.label]} for m in c.models],
        "colors": colors,
        "sections": sections(c, below, pictures, items, explained, root),
        "viewer": _viewer(items),
    }


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("detect_cli.compare", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["zip"] = zip
    env.filters["md_link"] = _md_link
    env.filters["md_cell"] = lambda cell: str(cell).replace("|", "\\|")
    return env


def render(template: str, data: dict[str, Any]) -> str:
    return _environment().get_template(template).render(page=data)


def markdown(
    c: Comparison,
    plots: dict[str, bytes],
    items: Sequence[GalleryItem] = (),
    side: Sequence[str] = (),
    explained: Sequence[Path] = (),
    root: Path | None = None,
) -> str:
    """report.md: the page's data as Markdown, linking the plots (plots/<name>) and pictures (`side`:
    side-by-side pictures, relative to the report folder) instead of embedding them."""
    data = page(c, plots, (), items, explained, root)
    if side and not items:  # report.html's kept pictures, linked
        figures = [{"name": Path(p).name, "path": p} for p in side]
        at = next((k + 1 for k, s in enumerate(data["sections"]) if s["id"] == "agreement"), 0)
        data["sections"].insert(
            at, {"id": "pictures", "title": "Side by side", "kind": "figures", "figures": figures}
        )
    return render("report.md", data)


def html_report(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture],
    items: Sequence[GalleryItem] = (),
    explained: Sequence[Path] = (),
) -> str:
    """One file that opens offline: plots, thumbnails and the viewer's pictures are data: URIs, the
    style and the viewer's script are inline, nothing is fetched; the gallery's thumbnails and the
    side-by-side video link to the files beside it."""
    return render("report.html", page(c, plots, pictures, items, explained))


def write_report(
    c: Comparison,
    out: Path,
    pictures: Sequence[Picture] = (),
    explained: Sequence[Path] = (),
    listed: Callable[[Path], None] | None = None,
    plots: dict[str, bytes] | None = None,
) -> list[Path]:
    """report.json, report.md, report.html and plots/*.png in `out`; returns the paths written.
    `explained`: pictures of `--explain` (explain/), shown in a section of their own. `listed` is told of
    each file before it is written (the run's file list, so `--exist-ok` can remove a report cut short).
    `plots`: the plots already drawn (`report_plots.draw_plots`), else they are drawn here.
    A file that cannot be written (a full disk, a read-only folder) ends it with an `OutputError` saying
    where the measurements are."""
    plots = make_plots(c) if plots is None else plots
    written = []
    for name, png in plots.items():
        _write(out / "plots" / name, png, out, listed)
        written.append(out / "plots" / name)
    items = gallery(c, out)
    side = sorted(p.relative_to(out).as_posix() for p in (out / "side-by-side").rglob("*.jpg"))
    documents = {
        "report.json": json_text(report_dict(c), indent=2) + "\n",
        "report.md": markdown(c, plots, items, side[:HTML_PICTURES], explained, out),
        "report.html": html_report(c, plots, pictures, items, explained),
    }
    for name, text in documents.items():
        # A file name that is not UTF-8 is shown with backslash escapes (report.json keeps it exactly).
        _write(out / name, text.encode("utf-8", "backslashreplace"), out, listed)
        written.append(out / name)
    return written


def _write(path: Path, data: bytes, out: Path, listed: Callable[[Path], None] | None) -> None:
    """One report file, whole or not at all. The comparison is done by now and its detections are on
    disk: a failure here is said in one line, with where they are, not as an unexpected OSError."""
    if listed is not None:
        listed(path)
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise OutputError(
            f"cannot write {path}: {e.strerror or e}; the report is incomplete (the measurements are in "
            f"{out / DETECTIONS}, one JSONL file per model)"
        ) from e
