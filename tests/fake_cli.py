"""`python tests/fake_cli.py ARGS` is `python -m detect_cli ARGS` in a real process, except that the
weights files made by tests/fakes.py load as the fake detector: for tests of the plumbing in a process
of its own (signals, FIFOs, URL deadlines, locks, memory, file names), which need no real model and so
no torch or ultralytics (about 3 s of imports, and the model's load, per child).

The CLI runs as `python -m detect_cli` does (runpy: the same __main__ and program name). Three places
in detect_cli import torch/ultralytics whatever the model is; with the fake they are not needed, so they
are replaced here (in this process only):
- models.select_device imports torch even for `--device cpu`: `cpu` is answered here, anything else
  goes to the real function;
- backends.load_detector imports ultralytics before loading (its logger, offline settings): the fake
  loads nothing from it;
- render.draw_detections draws with ultralytics' Annotator: here the boxes are drawn with OpenCV (the
  same picture size; what the boxes look like is tested in-process, in test_render).

DETECT_FAKE_DELAY_S: seconds the fake spends on each picture, so that a run is still going when a test
acts on it.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from detect_cli.results import Detection


def _cpu_without_torch(real: Callable[[str], str]) -> Callable[[str], str]:
    def select_device(device: str) -> str:
        return "cpu" if device.strip().lower() == "cpu" else real(device)

    return select_device


def _draw_with_opencv(
    image: np.ndarray, detections: Sequence[Detection], title: str | None = None
) -> np.ndarray:
    import cv2

    from detect_cli.render import draw_title

    out = image.copy()
    for det in detections:
        x1, y1, x2, y2 = (int(v) for v in det.xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), 1)
        cv2.putText(out, det.class_name, (x1, max(y1, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 255, 0), 1)
    return draw_title(out, title) if title else out


def main() -> None:
    from fakes import FakeDetector, fake_load

    from detect_cli import backends, render, writers

    FakeDetector.delay = float(os.environ.get("DETECT_FAKE_DELAY_S", "0"))
    backends.load = fake_load(backends.load)  # type: ignore[assignment]
    backends.select_device = _cpu_without_torch(backends.select_device)  # type: ignore[assignment]
    backends.import_ultralytics = lambda: None  # type: ignore[assignment]
    render.draw_detections = writers.draw_detections = _draw_with_opencv  # type: ignore[assignment]
    runpy.run_module("detect_cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
