"""Generated videos whose motion is known: filled squares in the pure colours tests/fakes.py's
ShapeDetector finds (red = person, green = car, blue = dog), moving on straight lines over a dark,
slightly noisy background. A scene is a list of `Mover`s; each says where its square is in each frame
(None: not in the picture), so a test knows every box and every track the motion implies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from fakes import SHAPE_COLOURS

SIZE = (96, 128)  # h, w
FPS = 10.0


@dataclass(frozen=True)
class Mover:
    """A square of `side` pixels of class `class_id`'s colour; `at(frame)` is its top-left corner, or
    None while it is not there."""

    class_id: int
    side: int
    at: Callable[[int], tuple[int, int] | None]


def line(x0: float, y0: float, dx: float, dy: float, visible: Callable[[int], bool] = lambda f: True):  # type: ignore[no-untyped-def]
    """A straight line at (dx, dy) pixels per frame from (x0, y0)."""
    return lambda f: (round(x0 + dx * f), round(y0 + dy * f)) if visible(f) else None


def draw(frame: int, movers: Sequence[Mover], size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    h, w = size
    rng = np.random.default_rng(seed * 10_000 + frame)
    img = rng.integers(30, 70, (h, w, 3), dtype=np.uint8)  # dark grey noise: never one of the colours
    for m in movers:
        corner = m.at(frame)
        if corner is not None:
            x, y = corner
            cv2.rectangle(img, (x, y), (x + m.side - 1, y + m.side - 1), SHAPE_COLOURS[m.class_id], -1)
    return img


def make_motion_video(
    path: Path, movers: Sequence[Mover], frames: int, size: tuple[int, int] = SIZE, fps: float = FPS
) -> Path:
    """The scene as a video (MJPG in .avi: its colours survive the compression well enough)."""
    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), path
    for f in range(frames):
        writer.write(draw(f, movers, size))
    writer.release()
    return path


# The scenes the tests use; frames 0-based.
TWO_LINES = [  # two squares on parallel lines, always in the picture: two tracks of every frame
    Mover(0, 20, line(4, 10, 4, 0)),
    Mover(1, 20, line(100, 60, -4, 0)),
]
CROSSING = [  # a person going right and a car going down, crossing in the middle around frame 10
    Mover(0, 24, line(4, 36, 4.5, 0)),
    Mover(1, 12, line(48, 2, 0, 4.5)),
]
LEAVES_AND_RETURNS = [  # out through the right edge after frame 18, back in from there at frame 31
    Mover(0, 24, lambda f: (10 + 6 * f, 30) if f < 19 else ((128 - 6 * (f - 30), 50) if f > 30 else None)),
]
BLINKS = [  # a dog standing still, missed on frames 10 and 11
    Mover(2, 20, line(50, 40, 0, 0, visible=lambda f: f not in (10, 11))),
]
HIDES = [  # the same dog, gone for frames 10-12
    Mover(2, 20, line(50, 40, 0, 0, visible=lambda f: f not in (10, 11, 12))),
]
