"""Presenting a `Comparison`: report.json, report.md, a self-contained report.html (plots and pictures
embedded as base64, no external reference), PNG plots, and the terminal tables. What is written during
the run (detections, side-by-side pictures and videos) is outputs.py's.

Data is shaped in Python, markup lives in templates (`templates/report.html`, `report.md`, `report.css`,
Jinja2, autoescaped HTML): `page()` turns the comparison into one plain `dict` and both documents are
rendered from it. Tables are `report_tables.TableData` rows, plots `report_plots`, the gallery
`report_gallery`.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.compare.report_gallery import (
    GALLERY_NOTE,
    HTML_PICTURE_WIDTH,
    GalleryItem,
    _agreement_text,
    gallery,
    small_jpeg_file,
)
from detect_cli.compare.report_plots import make_plots
from detect_cli.compare.report_tables import (
    TableData,
    _run_lines,
    environment_lines,
    input_shapes_differ,
    memory_note,
    rich_tables,
    tables,
)
from detect_cli.compare.results import Comparison, Picture
from detect_cli.compare.verdict import verdict
from detect_cli.writers import atomic_write_bytes, json_text

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "HTML_PICTURES",
    "HTML_PICTURE_WIDTH",
    "REPORT_FILES",
    "REPORT_RECORD",
    "GalleryItem",
    "TableData",
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


def page(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture] = (),
    items: Sequence[GalleryItem] = (),
    explained: Sequence[Path] = (),
) -> dict[str, Any]:
    """Everything the templates show, as plain data."""
    v = verdict(c)
    random_weights = None
    if any(m.info.untrained for m in c.models):
        random_weights = v.headline[0].removeprefix("Random weights").lstrip(" .:")
    return {
        "title": " vs ".join(m.info.label for m in c.models),
        "random_weights": random_weights,
        "verdict": list(v.lines),
        "shapes_differ": input_shapes_differ(c),
        "run": _run_lines(c),
        "environment": environment_lines(c.environment),
        "tables": tables(c),
        "plots": [{"name": n, "src": _data_uri(png, "image/png")} for n, png in plots.items()],
        "plot_files": [{"stem": Path(n).stem, "path": f"plots/{n}"} for n in plots],
        "videos": _videos(c, pictures),
        "gallery": [
            {
                "source": g.source,
                "path": g.path,
                "href": _href(g.path),
                "text": _agreement_text(g),
                "thumbnail": _data_uri(g.thumbnail, "image/jpeg") if g.thumbnail else None,
            }
            for g in items
        ],
        "gallery_note": GALLERY_NOTE.format(thumbs=sum(1 for g in items if g.thumbnail)),
        "md_links": MD_GALLERY_LINKS,
        "pictures": [{"source": p.source, "src": _data_uri(p.jpeg, "image/jpeg")} for p in pictures],
        "explained": [
            {"name": p.name, "src": _data_uri(data, "image/jpeg")}
            for p in explained
            if (data := small_jpeg_file(p))
        ],
        "explain_note": EXPLAIN_NOTE,
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
    c: Comparison, plots: Sequence[str], pictures: Sequence[str], items: Sequence[GalleryItem] = ()
) -> str:
    """report.md; `plots` and `pictures` are paths relative to the report folder."""
    data = page(c, {}, (), items)
    data["plot_files"] = [{"stem": Path(p).stem, "path": p} for p in plots]
    data["side_files"] = [{"name": Path(p).name, "path": p} for p in pictures]
    data["explained_files"] = []
    return render("report.md", data)


def html_report(
    c: Comparison,
    plots: dict[str, bytes],
    pictures: Sequence[Picture],
    items: Sequence[GalleryItem] = (),
    explained: Sequence[Path] = (),
) -> str:
    """One file that opens offline: plots and thumbnails are data: URIs, the style is inline, nothing
    is fetched; the gallery's thumbnails and the side-by-side video link to the files beside it."""
    return render("report.html", page(c, plots, pictures, items, explained))


def write_report(
    c: Comparison, out: Path, pictures: Sequence[Picture] = (), explained: Sequence[Path] = ()
) -> list[Path]:
    """report.json, report.md, report.html and plots/*.png in `out`; returns the paths written.
    `explained`: pictures of `--explain` (explain/), shown in a section of their own."""
    plots = make_plots(c)
    written = []
    for name, png in plots.items():
        atomic_write_bytes(out / "plots" / name, png)
        written.append(out / "plots" / name)
    items = gallery(c, out)
    side = sorted(p.relative_to(out).as_posix() for p in (out / "side-by-side").rglob("*.jpg"))[
        :HTML_PICTURES
    ]
    md = page(c, {}, (), items, ())
    md["plot_files"] = [{"stem": Path(n).stem, "path": f"plots/{n}"} for n in plots]
    md["side_files"] = [{"name": Path(p).name, "path": p} for p in side]
    md["explained_files"] = [{"name": p.name, "path": p.relative_to(out).as_posix()} for p in explained]
    documents = {
        "report.json": json_text(report_dict(c), indent=2) + "\n",
        "report.md": render("report.md", md),
        "report.html": html_report(c, plots, pictures, items, explained),
    }
    for name, text in documents.items():
        # A file name that is not UTF-8 is shown with backslash escapes (report.json keeps it exactly).
        atomic_write_bytes(out / name, text.encode("utf-8", "backslashreplace"))
        written.append(out / name)
    return written
