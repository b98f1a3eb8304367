"""The committed trained pair (tests/data/trained): a YOLO11n and a small RT-DETR trained on synthetic shapes,
with their validation set. Unlike the seeded models they score far above zero, so a wrong accuracy figure
shows. Remade by `python tests/data/trained/make.py` (see RESULTS.md there for what it measured)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent / "data" / "trained"
YOLO_PT = ROOT / "yolo-shapes.pt"
RTDETR_PT = ROOT / "rtdetr-shapes.pt"
VAL = ROOT / "val"
VAL_IMAGES = VAL / "images"  # 60 JPEGs of 192-320 px sides, labels in VAL / "labels"
DATA_YAML = VAL / "data.yaml"  # YOLO labels (`--data`)
COCO_JSON = VAL / "instances_val.json"  # the same labels in COCO format (`--coco`), category ids 1-based
NAMES = ("circle", "square", "triangle", "cross")  # class ids 0..3, in both models and both label files
IMGSZ = 256  # what both were trained and measured at


def measured() -> dict[str, Any]:
    """What make.py measured, per model ("yolo", "rtdetr"): ultralytics' val mAP50-95 and mAP50 on VAL,
    parameters, epochs, batch, imgsz, training wall time."""
    return json.loads((ROOT / "results.json").read_text())
