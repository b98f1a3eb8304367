"""A fake detector for plumbing tests, as simonw/llm's MockModel: deterministic boxes, no weights, no
network, no torch forward. Tests of the plumbing (outputs, records, resume, signals, messages) use it;
tests of what the models do (parity with ultralytics predict, `val`, exports, Ray = local) keep the
seeded models built from ultralytics' YAML configs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import Detection, Speed

FAKE_NAMES = {0: "person", 1: "car", 2: "dog"}
FAKE_WEIGHTS = b"fake weights: loaded as tests.fakes.FakeDetector"


class FakeDetector(Detector):
    """Three boxes per picture, placed by its size, the second scored by its mean brightness (so
    different pictures give different records), filtered by conf, classes and max_det as a model is."""

    def __init__(self, ref: ModelRef, options: PredictOptions) -> None:
        super().__init__(ref, _FakeModel(), options, backend="torch")
        self.calls = 0

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        o = self.options
        out = []
        for image in images:
            self.calls += 1
            h, w = image.shape[:2]
            boxes = [
                (0, 0.9, (0.0, 0.0, w / 2, h / 2)),
                (1, round(float(image.mean()) / 255, 4), (w / 4, h / 4, float(w), float(h))),
                (2, 0.1, (w / 3, 0.0, float(w), h / 3)),
            ]
            dets = tuple(
                Detection(c, FAKE_NAMES[c], s, box)
                for c, s, box in boxes
                if s >= o.conf and (o.classes is None or c in o.classes)
            )
            out.append((dets[: o.max_det], Speed(0.1, 1.0, 0.1)))
        return out


class _FakeModel:
    names = FAKE_NAMES


def install(monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, Path]:
    """Fake weights files named like the seeded test models (`rtdetr-l-seed0.pt`, `yolo11n-seed0.pt`), and
    the loader patched so that they load as FakeDetector: `-m <file>` runs the whole CLI on the fake."""
    from detect_cli import backends

    folder.mkdir(parents=True, exist_ok=True)
    files = {"rtdetr": folder / "rtdetr-l-seed0.pt", "yolo": folder / "yolo11n-seed0.pt"}
    for path in files.values():
        path.write_bytes(FAKE_WEIGHTS)
    real = backends.load

    def load(ref: ModelRef, options: PredictOptions, plan: backends.Plan, warn=None) -> Detector:  # type: ignore[no-untyped-def]
        location = Path(ref.location)
        if location.is_file() and location.read_bytes() == FAKE_WEIGHTS:
            return FakeDetector(ref, options)
        return real(ref, options, plan, warn or (lambda _: None))

    monkeypatch.setattr(backends, "load", load)
    return files
