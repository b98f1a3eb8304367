"""YOLO label files: one labels/<input>.txt per input, boxes normalised to 0-1."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli.results import ImageResult
from detect_cli.sources import output_file

if TYPE_CHECKING:
    import numpy as np
from detect_cli.writers.atomic import atomic_write_bytes
from detect_cli.writers.sinks import Sink


class YoloTxtWriter(Sink):
    """labels/<input path>.txt in YOLO format: `class cx cy w h confidence`, normalised to 0-1."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if not result.ok or not result.width or not result.height:
            return
        w, h = result.width, result.height
        lines = []
        for d in result.detections:
            x1, y1, x2, y2 = d.xyxy
            lines.append(
                f"{d.class_id} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f} {d.confidence:.6f}\n"
            )
        atomic_write_bytes(self.target(self.root, rel_path), "".join(lines).encode())

    @staticmethod
    def target(root: Path, rel_path: PurePosixPath) -> Path:
        return root / output_file(rel_path, ".txt")
