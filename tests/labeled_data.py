"""Tiny labelled datasets for the compare tests, in YOLO layout (data.yaml, images/, labels/) with the
same labels as a COCO annotations json. Built from OpenCV drawings, or from a seeded model's detections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conftest import make_image

# (class id, x1, y1, x2, y2) in pixels, per image; images are 96x128 (h x w).
TINY_NAMES = ("cat", "dog", "bird")
TINY_BOXES: dict[str, list[tuple[int, float, float, float, float]]] = {
    "a.jpg": [(0, 10, 10, 60, 50), (1, 70, 40, 120, 90)],
    "b.jpg": [(2, 20, 30, 50, 70), (0, 60, 5, 110, 45), (0, 5, 60, 40, 92)],
    "c.jpg": [(1, 30, 20, 100, 80)],
    "empty.jpg": [],  # a background image: a label file with no lines
}


@dataclass(frozen=True)
class Dataset:
    root: Path
    images: Path  # the images/val folder
    data_yaml: Path
    coco_json: Path


def write_dataset(
    root: Path,
    boxes: dict[str, Sequence[tuple[int, float, float, float, float]]],
    names: Sequence[str],
    size: tuple[int, int] = (96, 128),
) -> Dataset:
    """images/val/<name>, labels/val/<stem>.txt, data.yaml, and annotations.json (COCO ids = YOLO id + 1,
    so matching by class name, not by number, is what makes them agree)."""
    h, w = size
    images = root / "images" / "val"
    coco: dict = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    for k, (name, rows) in enumerate(sorted(boxes.items()), 1):
        make_image(images / name, seed=k, size=size)
        label = root / "labels" / "val" / f"{Path(name).stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            for c, x1, y1, x2, y2 in rows
        ]
        label.write_text("".join(line + "\n" for line in lines))
        coco["images"].append({"id": k, "file_name": name, "width": w, "height": h})
        coco["annotations"] += [
            {
                "id": len(coco["annotations"]) + 1 + j,
                "image_id": k,
                "category_id": c + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
            }
            for j, (c, x1, y1, x2, y2) in enumerate(rows)
        ]
    names_yaml = "".join(f"  {i}: '{n}'\n" for i, n in enumerate(names))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root}\ntrain: images/val\nval: images/val\nnames:\n{names_yaml}")
    coco_json = root / "annotations.json"
    coco_json.write_text(json.dumps(coco))
    return Dataset(root, images, data_yaml, coco_json)


def tiny_dataset(root: Path) -> Dataset:
    return write_dataset(root, TINY_BOXES, TINY_NAMES)
