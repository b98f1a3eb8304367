"""Make samples/street.mp4: a 3 s, 640x360 clip panning across bus.jpg and zidane.jpg.

Run from the repo root: `python samples/make_street_video.py`. Deterministic, so the checked-in clip can
be remade exactly; later video commands and benchmarks use it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 15, 3


def _pan(image: np.ndarray, frames: int) -> list[np.ndarray]:
    """Crop a 16:9 window and slide it across the image, resized to the clip size."""
    h, w = image.shape[:2]
    cw = min(w, int(h * WIDTH / HEIGHT))
    ch = int(cw * HEIGHT / WIDTH)
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x = int((w - cw) * t)
        y = int((h - ch) * (0.3 + 0.4 * t))
        out.append(cv2.resize(image[y : y + ch, x : x + cw], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    return out


def main(out: Path = HERE / "street.mp4") -> int:
    total = FPS * SECONDS
    frames = _pan(cv2.imread(str(HERE / "bus.jpg")), total // 2)
    frames += _pan(cv2.imread(str(HERE / "zidane.jpg")), total - total // 2)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        print("OpenCV cannot write mp4 here", file=sys.stderr)
        return 1
    for f in frames:
        writer.write(f)
    writer.release()
    print(f"wrote {out} ({len(frames)} frames, {out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
