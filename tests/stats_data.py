"""A hand-built labelled COCO dataset and two seeded sets of detections for the statistics tests.

The labels are known boxes (small, medium and large; 1 to 15 objects per picture, a few background
pictures). Each "model" is the labels jittered, some dropped, some duplicated, plus false positives, with
seeded noise and distinct scores: inputs to the metric functions, whose figures are checked against
pycocotools, not detections from a network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect_cli.compare.accuracy import coco_eval
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.matches import MatchTable, match_table

NAMES = ("cat", "dog", "bird")
W, H = 640, 480


@dataclass(frozen=True)
class Synthetic:
    gt: GroundTruth
    boxes: dict[int, list[tuple[int, float, float, float, float]]]  # image id → (cat, x, y, w, h)


def make_labels(pictures: int = 40, seed: int = 1, background: int = 2) -> Synthetic:
    rng = np.random.default_rng(seed)
    images, annotations, boxes = [], [], {}
    counts = np.concatenate([rng.integers(1, 16, pictures - background), np.zeros(background, int)])
    for image_id, count in enumerate(counts, start=1):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": W, "height": H})
        boxes[image_id] = []
        for _ in range(int(count)):
            side = float(rng.choice([rng.uniform(12, 30), rng.uniform(40, 90), rng.uniform(110, 220)]))
            w, h = side * rng.uniform(0.8, 1.25), side * rng.uniform(0.8, 1.25)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            cat = int(rng.integers(1, len(NAMES) + 1))
            boxes[image_id].append((cat, x, y, w, h))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    gt = GroundTruth(
        path="synthetic.json",
        kind="coco",
        categories={i + 1: n for i, n in enumerate(NAMES)},
        coco=coco,
        image_ids={f"/data/{i['file_name']}": i["id"] for i in images},
    )
    return Synthetic(gt, boxes)


def make_detections(data: Synthetic, seed: int, keep: float = 0.8, jitter: float = 0.08) -> np.ndarray:
    """Rows [image_id, x, y, w, h, score, category_id]: each label kept with probability `keep` and moved
    by `jitter` of its size, some duplicated, false positives added; scores made distinct."""
    rng = np.random.default_rng(seed)
    rows = []
    for image_id, objs in data.boxes.items():
        for cat, x, y, w, h in objs:
            if rng.random() > keep:
                continue
            good = rng.random()
            j = jitter * (0.5 + 1.5 * (1 - good))
            box = [x + rng.normal(0, j * w), y + rng.normal(0, j * h), w * rng.uniform(1 - j, 1 + j), h]
            wrong_class = rng.random() < 0.05
            c = int(rng.integers(1, len(NAMES) + 1)) if wrong_class else cat
            rows.append([image_id, *box, 0.3 + 0.7 * good, c])
            if rng.random() < 0.1:  # a duplicate, a little off and less sure
                rows.append([image_id, box[0] + 2, box[1] + 2, box[2], box[3], 0.2 * good + 0.05, c])
        for _ in range(int(rng.integers(0, 4))):  # false positives
            w, h = rng.uniform(15, 150, 2)
            fp = [image_id, rng.uniform(0, W - w), rng.uniform(0, H - h), w, h, rng.uniform(0.01, 0.6)]
            rows.append([*fp, int(rng.integers(1, len(NAMES) + 1))])
    out = np.array(rows, dtype=float)
    # distinct scores, order kept: rank → an evenly spread score in (0.001, 0.999)
    ranks = np.argsort(np.argsort(out[:, 5], kind="stable"), kind="stable")
    out[:, 5] = 0.001 + 0.998 * (ranks + 1) / (len(out) + 1)
    return out


def table(data: Synthetic, predictions: np.ndarray, image_ids: list[int] | None = None) -> MatchTable:
    return match_table(coco_eval(data.gt, predictions, image_ids=image_ids))
