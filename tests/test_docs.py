"""The documentation: the MkDocs site builds offline with no broken link or anchor (`make docs`), and
the README's own links lead somewhere."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build_site(site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the repository's mkdocs.yml into `site`, as `make docs` runs it."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,  # the snippets' base path (ARCHITECTURE.md, CHANGELOG.md) is the repository's root
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "mkdocs", reason="mkdocs is not installed (it comes with the dev extra: pip install -e '.[dev]')"
    )
    pytest.importorskip(
        "material",
        reason="mkdocs-material is not installed (it comes with the dev extra: pip install -e '.[dev]')",
    )
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = build_site(out)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "report.png").is_file() and (site / "explain-bus.jpg").is_file()


def test_architecture_page_is_architecture_md(site: Path) -> None:
    """The page includes ARCHITECTURE.md itself: each of its headings is on the page, none is a copy."""
    page = (site / "architecture.html").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"), re.M)
    assert headings
    text = html.unescape(re.sub(r"</?code>", "", page))
    for heading in headings:
        assert heading.replace("`", "") in text, heading
    assert "--8&lt;--" not in page and "--8<--" not in page


def test_fault_table_keeps_its_anchor(site: Path) -> None:
    page = (site / "what-can-go-wrong.html").read_text(encoding="utf-8")
    assert 'id="what-can-go-wrong"' in page
    assert "<th>fault</th>" in page and "<th>exit</th>" in page


def test_site_fetches_nothing_from_the_network(site: Path) -> None:
    """Fonts come from the system (theme.font: false), so pages opened offline load everything."""
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, page.name


def test_broken_link_fails_the_build(tmp_path: Path) -> None:
    """--strict is what makes the build a check: a page linking to a page that does not exist fails it."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it comes with the dev extra)")
    pytest.importorskip("material", reason="mkdocs-material is not installed (it comes with the dev extra)")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](no-such-page.md)\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text("site_name: x\ntheme:\n  name: material\n  font: false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "no-such-page.md" in proc.stderr + proc.stdout


def test_readme_links_resolve() -> None:
    """The README is read on the forge, outside the site: its relative links must name existing files,
    and it shows the two commands a newcomer runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make run" in readme
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local
    for target in local:
        assert (ROOT / target.split("#")[0]).exists(), target
    anchors = {
        re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", readme, re.M)
    }
    for target in targets:
        if target.startswith("#"):
            assert target[1:] in anchors, target
