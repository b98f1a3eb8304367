"""A fake detector for plumbing tests, as simonw/llm's MockModel: deterministic boxes, no weights, no
network, no torch forward. Tests of the plumbing (outputs, records, resume, signals, messages) use it;
tests of what the models do (parity with ultralytics predict, `val`, exports, Ray = local) keep the
seeded models built from ultralytics' YAML configs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import Detection, Speed

if TYPE_CHECKING:  # not imported at run time: tests/fake_cli.py runs this module outside pytest
    import pytest

FAKE_NAMES = {0: "person", 1: "car", 2: "dog"}
FAKE_WEIGHTS = b"fake weights: loaded as tests.fakes.FakeDetector"
SHAPES_WEIGHTS = b"fake weights: loaded as tests.fakes.ShapeDetector"
# ShapeDetector's classes: the pure colours (BGR) tests/motion.py paints its moving shapes in.
SHAPE_COLOURS = {0: (0, 0, 255), 1: (0, 255, 0), 2: (255, 0, 0)}  # person red, car green, dog blue
MIN_SHAPE_AREA = 12  # pixels: smaller specks of colour (compression noise) are not shapes


class FakeDetector(Detector):
    """Three boxes per picture, placed by its size, the second scored by its mean brightness (so
    different pictures give different records), filtered by conf, classes and max_det as a model is.
    `delay`: seconds spent on each picture, for a run that must still be going when a test acts on it."""

    delay = 0.0

    def __init__(self, ref: ModelRef, options: PredictOptions) -> None:
        super().__init__(ref, _FakeModel(), options, backend="torch")
        self.calls = 0

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        o = self.options
        out = []
        for image in images:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
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


class ShapeDetector(Detector):
    """Finds what is really in the picture: each blob of one of SHAPE_COLOURS (found by thresholding the
    colour, then connected components) is a box of that colour's class, at confidence 0.9. Its boxes are
    where the shapes are drawn, so tracks over them follow the shapes' real motion."""

    def __init__(self, ref: ModelRef, options: PredictOptions) -> None:
        super().__init__(ref, _FakeModel(), options, backend="torch")

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        if FakeDetector.delay:  # tests/fake_cli.py's DETECT_FAKE_DELAY_S
            time.sleep(FakeDetector.delay * len(images))
        return [(self.find(image), Speed(0.1, 1.0, 0.1)) for image in images]

    def find(self, image: np.ndarray) -> tuple[Detection, ...]:
        import cv2

        o = self.options
        found = []
        px = image.astype(np.int16)
        for class_id, colour in SHAPE_COLOURS.items():
            if o.classes is not None and class_id not in o.classes:
                continue
            on = np.ones(image.shape[:2], bool)
            for channel, value in enumerate(colour):  # the colour's channel high, the others low
                on &= px[..., channel] > 150 if value else px[..., channel] < 100
            n, _, stats, _ = cv2.connectedComponentsWithStats(on.astype(np.uint8), connectivity=8)
            for x, y, w, h, area in stats[1:n]:
                if area >= MIN_SHAPE_AREA:
                    box = (float(x), float(y), float(x + w), float(y + h))
                    found.append(Detection(class_id, FAKE_NAMES[class_id], 0.9, box))
        return tuple(found[: o.max_det]) if 0.9 >= o.conf else ()


class _FakeModel:
    names = FAKE_NAMES


def install(monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, Path]:
    """Fake weights files named like the seeded test models (`rtdetr-l-seed0.pt`, `yolo11n-seed0.pt`), and
    the loader patched so that they load as FakeDetector: `-m <file>` runs the whole CLI on the fake."""
    from detect_cli.backends import loading

    files = write_fake_weights(folder)
    monkeypatch.setattr(loading, "load", fake_load(loading.load))
    return files


def write_fake_weights(folder: Path) -> dict[str, Path]:
    """The fake weights files alone (for a child process started with tests/fake_cli.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"rtdetr": folder / "rtdetr-l-seed0.pt", "yolo": folder / "yolo11n-seed0.pt"}
    for path in files.values():
        path.write_bytes(FAKE_WEIGHTS)
    files["shapes"] = folder / "shapes-seed0.pt"
    files["shapes"].write_bytes(SHAPES_WEIGHTS)
    return files


def fake_load(real: Callable[..., Detector]) -> Callable[..., Detector]:
    """backends.load, except that a fake weights file loads as FakeDetector."""

    def load(ref: ModelRef, options: PredictOptions, plan: object, warn=None) -> Detector:  # type: ignore[no-untyped-def]
        location = Path(ref.location)
        if location.is_file() and location.read_bytes() == FAKE_WEIGHTS:
            return FakeDetector(ref, options)
        if location.is_file() and location.read_bytes() == SHAPES_WEIGHTS:
            return ShapeDetector(ref, options)
        return real(ref, options, plan, warn or (lambda _: None))

    return load
