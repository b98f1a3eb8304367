"""Wall time and peak RSS of a whole process, measured right.

The kernel's peak RSS of a child (ru_maxrss from wait4) starts from its parent's size at fork: a
benchmark process that has torch and a model loaded would report its own size for every child. So the
child is started by a small launcher (a fresh Python that imports nothing else), which times it and
reads its ru_maxrss; the numbers come back on the launcher's last line of stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LAUNCHER = r"""
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
sys.stderr.write(f"\nMEASURED {os.waitstatus_to_exitcode(status)} {wall:.4f} {usage.ru_maxrss}\n")
"""


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS in MiB, stderr) of `argv` run to its end."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *argv], env=env, cwd=cwd, stderr=subprocess.PIPE, text=True
    )
    *err, last = done.stderr.rstrip("\n").split("\n")
    _, code, wall, rss_kib = last.split()
    return int(code), float(wall), int(rss_kib) / 1024, "\n".join(err)
