"""`--help` and `detect models` as a newcomer meets them: in a default terminal (80 columns), or piped."""

from __future__ import annotations

import json
import os
import pty
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from detect_cli import backends
from detect_cli.cli import app

WIDTH = 80
SEPARATOR = "=== HELP OF "


def _commands() -> dict[str, list[str]]:
    """Every command and group, by its words (`yolo image`), with the option names it takes."""
    import typer.main

    found: dict[str, list[str]] = {}

    def walk(command: object, words: tuple[str, ...]) -> None:
        names = [o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))]  # type: ignore[attr-defined]
        found[" ".join(words)] = [n for n in names if n.startswith("-")]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*words, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()
# Renders every command's --help in one process, each after a separator line.
RENDER_ALL = (
    "from detect_cli.cli import app\n"
    f"for words in {list(COMMANDS)!r}:\n"
    f"    print({SEPARATOR!r} + words, flush=True)\n"
    "    try:\n"
    "        app([*words.split(), '--help'])\n"
    "    except SystemExit:\n"
    "        pass\n"
)


def _split(text: str) -> dict[str, str]:
    parts = text.split(SEPARATOR)[1:]
    return {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in parts}


def _in_a_terminal(code: str, columns: int, rows: int = 50) -> str:
    """What `code` prints in a real terminal (a pseudo-terminal `columns` wide, COLUMNS unset)."""
    import fcntl
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")}
    env["TERM"] = "dumb"  # a terminal, without colour codes to strip
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def _piped(code: str, columns: int | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module", params=["piped, COLUMNS=80", "piped, no COLUMNS", "a terminal 80 wide"])
def helps(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "a terminal 80 wide":
        return _split(_in_a_terminal(RENDER_ALL, WIDTH))
    return _split(_piped(RENDER_ALL, WIDTH if "=80" in request.param else None))


@pytest.mark.parametrize("words", list(COMMANDS))
def test_help_fits_80_columns_with_every_option_whole(helps: dict[str, str], words: str) -> None:
    text = helps[words]
    lines = text.splitlines()
    too_wide = [line for line in lines if cell_len(line.rstrip()) > WIDTH]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in text, text  # rich cuts a word that does not fit its column with an ellipsis
    assert "<bool>" not in text, text  # a plain flag takes no value (`--nms true` is a mistake)
    shown = {word.strip("│,") for line in lines for word in line.split()}
    missing = [name for name in COMMANDS[words] if name not in shown]
    assert not missing, f"{words or 'detect'}: {missing} not shown whole\n{text}"


def test_help_sorts_options_into_panels(helps: dict[str, str]) -> None:
    text = helps["image"]
    for panel in ("Model", "Inputs", "Output", "Run"):
        assert f"─ {panel} ─" in text, text
    model = text.split("─ Model ─")[1].split("─ Inputs ─")[0]
    assert "--offline-fallback" in model and "--conf" in model and "--out" not in model


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source() -> None:
    """A docstring's own line breaks would be kept inside a paragraph and then re-wrapped: ragged."""
    text = _split(_piped(RENDER_ALL, WIDTH))["compare"]
    body = text.split("Usage:")[1].split("╭")[0]
    paragraphs = "\n".join(line.strip() for line in body.splitlines()).strip().split("\n\n")
    paragraph = paragraphs[2].splitlines()  # after the usage line and the one-line summary
    assert len(paragraph) >= 3, paragraphs
    # every line but the last is filled: no line ends where the source's line ended
    assert all(len(line) > WIDTH - 20 for line in paragraph[:-1]), "\n".join(paragraph)


def _fake_export(cache: Path) -> None:
    """An export entry as the cache lists it (a manifest and the files it names)."""
    key = cache / "exports" / "0123456789abcdef-640-openvino-fp32"
    key.mkdir(parents=True)
    (key / "model.xml").write_text("<net/>")
    manifest = {
        "version": backends.MANIFEST_VERSION,
        "key": key.name,
        "model": "rtdetr-l",
        "family": "rtdetr",
        "source": str(cache / "weights" / "rtdetr-l.pt"),
        "imgsz": 640,
        "backend": "openvino",
        "precision": "fp32",
        "artifact": "model.xml",
        "files": {"model.xml": 6},
        "sha256": {},
        "created": "2026-01-02T03:04:05+0000",
        "parity": {"fp32": {"ok": True}, "bf16": {"ok": False}},
    }
    (key / "manifest.json").write_text(json.dumps(manifest))
    old = time.time() - 3 * 86400
    os.utime(key / "manifest.json", (old, old))


def test_models_fits_80_columns_and_json_keeps_every_field(tmp_path: Path) -> None:
    home = tmp_path / "a-home-folder-with-a-long-name" / "and-another-level-below-it"
    cache = home / ".cache" / "detect-cli"
    _fake_export(cache)
    env = {**os.environ, "HOME": str(home), "DETECT_CACHE_DIR": str(cache), "COLUMNS": str(WIDTH)}
    run = [sys.executable, "-m", "detect_cli", "models"]
    table = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
    assert table.returncode == 0, table.stderr
    too_wide = [line for line in table.stdout.splitlines() if cell_len(line.rstrip()) > WIDTH]
    assert not too_wide and "…" not in table.stdout, table.stdout
    assert "~/.cache/detect-cli/weights/" in table.stdout and "rtdetr-l" in table.stdout
    assert "fp32 yes" in table.stdout and "3 days ago" in table.stdout, table.stdout
    listed = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, env=env).stdout)
    assert listed["cache_dir"] == str(cache)  # the JSON keeps full paths and dates
    assert listed["models"][0]["weights"] == str(cache / "weights" / "rtdetr-l.pt")
    [export] = listed["exports"]
    assert set(export) == {
        "model",
        "backend",
        "imgsz",
        "size_mb",
        "parity_ok",
        "precision",
        "calibration",
        "created",
        "last_used",
        "source",
        "path",
    }
    assert export["created"] == "2026-01-02T03:04:05+0000" and export["path"].startswith(str(cache))


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(5, "just now"), (90, "1 min ago"), (7200, "2 h ago"), (86400, "1 day ago"), (5 * 86400, "5 days ago")],
)
def test_ago(seconds: float, said: str) -> None:
    from detect_cli.ui import ago

    assert ago(1_000_000.0 - seconds, now=1_000_000.0) == said
