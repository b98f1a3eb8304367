"""`python tests/fake_cli.py ARGS` is `python -m detect_cli ARGS` in a real process, except that the
weights files made by tests/fakes.py load as the fake detector: for tests of the plumbing in a process
of its own (signals, FIFOs, URL deadlines, locks, memory, file names), which need no real model, and so
no torch or ultralytics (about 3 s of imports per child, and the model's load). tests/test_fake_cli.py
checks that such a child imports neither.

The CLI runs as `python -m detect_cli` does (runpy: the same __main__ and program name).
DETECT_FAKE_DELAY_S: seconds the fake spends on each picture, so that a run is still going when a test
acts on it.
"""

from __future__ import annotations

import os
import runpy


def main() -> None:
    from fakes import FakeDetector, fake_load

    from detect_cli.backends import loading

    FakeDetector.delay = float(os.environ.get("DETECT_FAKE_DELAY_S", "0"))
    loading.load = fake_load(loading.load)  # type: ignore[assignment]
    runpy.run_module("detect_cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
