"""tests/fake_cli.py, which the subprocess tests of the plumbing run: it is `python -m detect_cli` on the
fake detector, and stays cheap (no torch, no ultralytics in the child)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import FAKE_CLI, fake_cli_env, make_image

# Runs tests/fake_cli.py as its own __main__ would, then says which heavy modules the child imported.
PROBE = (
    "import atexit, runpy, sys\n"
    "heavy = lambda: sorted(m for m in ('torch', 'ultralytics') if m in sys.modules)\n"
    "atexit.register(lambda: print('HEAVY', heavy()))\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path.insert(0, sys.argv[0].rpartition('/')[0])\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def test_a_fake_run_imports_neither_torch_nor_ultralytics(fake_yolo: Path, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-c",
        PROBE,
        str(FAKE_CLI),
        "yolo",
        "image",
        str(tmp_path / "in"),
        "-m",
        str(fake_yolo),
    ]
    proc = subprocess.run(
        [*argv, "--imgsz", "64", "-o", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=fake_cli_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [record, heavy] = proc.stdout.splitlines()
    assert json.loads(record)["model"] == "yolo11n-seed0" and json.loads(record)["detections"]
    assert heavy == "HEAVY []", proc.stdout
