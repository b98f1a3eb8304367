"""Remake the small trained detector pair the tests score: a synthetic shapes set, YOLO11n and a tiny RT-DETR.

    python tests/data/trained/make.py                # data, both models, RESULTS.md (under an hour, 2 cores)
    python tests/data/trained/make.py --only rtdetr   # one of the two (the other's figures are kept)
    python tests/data/trained/make.py --data-only    # the val set only
    python tests/data/trained/make.py --report       # RESULTS.md again from results.json and the weights

Every test model built from a YAML config has random weights and scores mAP 0, so a wrong accuracy figure
(a shifted box, a swapped class, a broken conversion) could not show. These two models are trained for
real, on CPU, from scratch, and are committed (optimizer stripped, fp16) beside their validation set:

    yolo-shapes.pt, rtdetr-shapes.pt     the weights (class names inside)
    val/images, val/labels, val/data.yaml   the validation set in ultralytics' YOLO layout
    val/instances_val.json               the same labels in COCO format (for `detect compare --coco`)
    RESULTS.md                           what this script measured: mAP, parameters, settings, wall time

The train set is not committed: this script remakes it, bit for bit, from SEED.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

# ---- settings ---------------------------------------------------------------------------------------
SEED = 0
NAMES = ("circle", "square", "triangle", "cross")  # class id = index
N_TRAIN, N_VAL = 400, 60  # pictures
SIDE_RANGE = (192, 320)  # each side of a picture, drawn independently (most pictures are not square)
OBJECTS_RANGE = (1, 15)  # shapes per picture
SMALL_SIDE, LARGE_SIDE = (8, 20), (24, 110)  # shape sizes in px; 40 % of the shapes are small
MAX_COVERED = 0.35  # a shape may hide at most this share of another's box (some overlap, nothing hidden)
JPEG_QUALITY = 90
IMGSZ = 256  # training and evaluation size
YOLO_TRAIN = {"epochs": 30, "batch": 16}
RTDETR_TRAIN = {"epochs": 6, "batch": 4}
THREADS = 2  # torch threads: the machine this was made on has 2 cores

HERE = Path(__file__).resolve().parent
VAL_DIR = HERE / "val"
YOLO_PT, RTDETR_PT = HERE / "yolo-shapes.pt", HERE / "rtdetr-shapes.pt"
RTDETR_YAML = HERE / "rtdetr-tiny.yaml"
RESULTS_JSON = HERE / "results.json"
COMMAND = "python tests/data/trained/make.py"


# ---- the synthetic set --------------------------------------------------------------------------------
def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Noise, a gradient or stripes (sometimes two of them blended), in muted colours."""

    def one() -> np.ndarray:
        kind = rng.integers(3)
        if kind == 0:  # coloured noise, blurred a little so it reads as texture
            base = rng.uniform(40, 200, 3)
            img = base + rng.normal(0, rng.uniform(10, 40), (h, w, 3))
            return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        angle = rng.uniform(0, np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        c0, c1 = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
        if kind == 1:  # linear gradient
            t = (t - t.min()) / max(t.max() - t.min(), 1.0)
        else:  # stripes
            t = 0.5 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(6, 40))
        return c0 + t[..., None] * (c1 - c0)

    img = one()
    if rng.random() < 0.4:
        img = 0.5 * img + 0.5 * one()
    return img + rng.normal(0, 4, (h, w, 3))


def _shape_mask(rng: np.random.Generator, cls: int, h: int, w: int, size: int) -> np.ndarray:
    """A filled shape of class `cls`, about `size` px across, in an h-by-w picture (maybe clipped)."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = size / 2
    angle = rng.uniform(0, 2 * np.pi)
    if cls == 0:  # circle
        cv2.circle(mask, (round(cx * 16), round(cy * 16)), round(r * 16), 255, -1, cv2.LINE_AA, shift=4)
        return mask
    if cls == 1:  # square, rotated
        pts = [(r, r), (-r, r), (-r, -r), (r, -r)]
        pts = [(x * 0.8, y * 0.8) for x, y in pts]  # its diagonal is about `size`
    elif cls == 2:  # triangle, equilateral, rotated
        pts = [(r * np.cos(a), r * np.sin(a)) for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)]
    else:  # cross (plus sign), rotated, arms a third as thick as long
        a, b = r, r / 3
        pts = [(b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
        pts += [(-x, -y) for x, y in pts]
    c, s = np.cos(angle), np.sin(angle)
    poly = np.array([[cx + x * c - y * s, cy + x * s + y * c] for x, y in pts])
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return mask


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box (x1, y1, x2, y2), exclusive ends, of the mask's clearly drawn pixels."""
    ys, xs = np.nonzero(mask >= 128)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _covered(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Share of box `a` that box `b` covers."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max((a[2] - a[0]) * (a[3] - a[1]), 1)


def make_picture(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, tuple[int, int, int, int]]]]:
    """One picture (BGR uint8) and its labels [(class, (x1, y1, x2, y2))] in pixels."""
    h, w = (int(rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1)) for _ in range(2))
    img = _background(rng, h, w)
    labels: list[tuple[int, tuple[int, int, int, int]]] = []
    want = int(rng.integers(OBJECTS_RANGE[0], OBJECTS_RANGE[1] + 1))
    for _ in range(want * 4):  # tries
        if len(labels) == want:
            break
        cls = int(rng.integers(len(NAMES)))
        small = rng.random() < 0.4
        side = SMALL_SIDE if small else (LARGE_SIDE[0], min(LARGE_SIDE[1], h, w))
        size = int(rng.integers(*side))
        mask = _shape_mask(rng, cls, h, w, size)
        box = _box(mask)
        if box is None or (box[2] - box[0]) < 5 or (box[3] - box[1]) < 5:
            continue  # fell mostly outside the picture
        if any(_covered(old, box) > MAX_COVERED or _covered(box, old) > MAX_COVERED for _, old in labels):
            continue
        colour = rng.uniform(0, 255, 3)
        alpha = (mask.astype(np.float64) / 255)[..., None]
        img = img * (1 - alpha) + colour * alpha
        labels.append((cls, box))
    return np.clip(img, 0, 255).astype(np.uint8), labels


def write_split(root: Path, split: str, n: int, rng: np.random.Generator) -> list[dict]:
    """Write n pictures and their YOLO labels under root/images and root/labels; return COCO image records."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        img, labels = make_picture(rng)
        h, w = img.shape[:2]
        name = f"{split}_{i:04d}"
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        rows = [
            f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            for c, (x1, y1, x2, y2) in labels
        ]
        (root / "labels" / f"{name}.txt").write_text("".join(r + "\n" for r in rows))
        records.append({"file_name": f"{name}.jpg", "width": w, "height": h, "labels": labels})
    return records


def write_data_yaml(root: Path) -> Path:
    """data.yaml for ultralytics: train and val both point at root/images (each split has its own root)."""
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    path = root / "data.yaml"
    path.write_text(f"path: .\ntrain: images\nval: images\nnames:\n{names}")
    return path


def write_coco(records: list[dict], path: Path) -> None:
    """COCO instances json; category ids are 1-based, names match data.yaml (detect matches by name)."""
    images, annotations = [], []
    for image_id, r in enumerate(records, 1):
        images.append(
            {"id": image_id, "file_name": r["file_name"], "width": r["width"], "height": r["height"]}
        )
        for c, (x1, y1, x2, y2) in r["labels"]:
            bw, bh = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": c + 1,
                    "bbox": [x1, y1, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(NAMES)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def make_data(train_root: Path) -> None:
    """The val set (committed, with its COCO json) and the train set (in train_root), from one seed each."""
    if VAL_DIR.exists():
        shutil.rmtree(VAL_DIR)
    records = write_split(VAL_DIR, "val", N_VAL, np.random.default_rng([SEED, 1]))
    write_data_yaml(VAL_DIR)
    write_coco(records, VAL_DIR / "instances_val.json")
    write_split(train_root, "train", N_TRAIN, np.random.default_rng([SEED, 0]))
    write_data_yaml(train_root)


# ---- training -----------------------------------------------------------------------------------------
def _train_yaml(train_root: Path, work: Path) -> Path:
    """data.yaml with absolute paths: train on the remade set, validate on the committed one."""
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    path = work / "data.yaml"
    path.write_text(f"train: {train_root / 'images'}\nval: {VAL_DIR / 'images'}\nnames:\n{names}")
    return path


def train(kind: str, data: Path, work: Path) -> dict:
    """Train one model from its YAML config, strip it to fp16 at `out`, and return what was measured."""
    import torch
    from ultralytics import RTDETR, YOLO
    from ultralytics.utils.torch_utils import strip_optimizer

    if kind == "yolo":
        cls, cfg, hyp, out = YOLO, "yolo11n.yaml", YOLO_TRAIN, YOLO_PT
    else:
        cls, cfg, hyp, out = RTDETR, str(RTDETR_YAML), RTDETR_TRAIN, RTDETR_PT
    torch.manual_seed(SEED)
    model = cls(cfg)
    start = time.monotonic()
    model.train(
        data=str(data),
        imgsz=IMGSZ,
        epochs=hyp["epochs"],
        batch=hyp["batch"],
        # ultralytics accumulates gradients up to a nominal batch of 64: on 400 pictures that leaves a few
        # optimizer steps per epoch and nothing learns. One step per batch instead.
        nbs=hyp["batch"],
        device="cpu",
        workers=0,
        seed=SEED,
        deterministic=True,
        amp=False,
        plots=False,
        val=False,  # one validation at the end (below), not one per epoch
        project=str(work / "runs"),
        name=kind,
        exist_ok=True,
        verbose=False,
    )
    wall = time.monotonic() - start
    best = Path(model.trainer.last)  # no per-epoch val, so "best" is just the last epoch
    shutil.copyfile(best, out)
    strip_optimizer(out)  # drops the optimizer and EMA copies, keeps the fp16 model and its class names
    trained = cls(str(out))
    metrics = trained.val(
        data=str(data),
        imgsz=IMGSZ,
        batch=8,
        device="cpu",
        workers=0,
        plots=False,
        project=str(work / "val"),
        name=kind,
    )
    return {
        "file": out.name,
        "config": Path(cfg).name,
        "params": _params(out),
        "epochs": hyp["epochs"],
        "batch": hyp["batch"],
        "imgsz": IMGSZ,
        "train_wall_s": round(wall, 1),
        "map50_95": round(float(metrics.box.map), 4),
        "map50": round(float(metrics.box.map50), 4),
        "size_mb": round(out.stat().st_size / 1e6, 2),
    }


def _params(weights: Path) -> int:
    """Parameters of the saved model (the trainer rebuilds the config's with our number of classes)."""
    from ultralytics import RTDETR, YOLO

    model = (RTDETR if "rtdetr" in weights.name else YOLO)(str(weights))
    return sum(p.numel() for p in model.model.parameters())


def write_results(results: list[dict]) -> None:
    """RESULTS.md: the measured figures as a table, and how they were made."""
    import platform

    import torch
    import ultralytics

    rows = "".join(
        f"| {r['file']} | {r['config']} | {r['params'] / 1e6:.2f} M | {r['epochs']} | {r['batch']} "
        f"| {r['imgsz']} | {r['train_wall_s'] / 60:.1f} min | {r['map50_95']:.3f} | {r['map50']:.3f} "
        f"| {r['size_mb']} MB |\n"
        for r in results
    )
    cpu = platform.processor() or platform.machine()
    (HERE / "RESULTS.md").write_text(
        "# The trained test pair\n\n"
        f"Made by `{COMMAND}` (seed {SEED}; {N_TRAIN} train and {N_VAL} val pictures of "
        f"{len(NAMES)} classes: {', '.join(NAMES)}), trained from scratch on CPU "
        f"({os.cpu_count()} logical CPUs, {cpu}, torch {THREADS} threads; torch {torch.__version__}, "
        f"ultralytics {ultralytics.__version__}). mAP is ultralytics' `val` on `val/` at imgsz {IMGSZ}.\n\n"
        "| weights | config | params | epochs | batch | imgsz | train wall time | mAP50-95 | mAP50 | file |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        + rows
        + "\nThe same figures, for tests: `results.json`.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-only", action="store_true", help="remake the val set only; train nothing")
    parser.add_argument("--only", choices=("yolo", "rtdetr"), help="train one of the two")
    parser.add_argument(
        "--report",
        action="store_true",
        help="rewrite RESULTS.md from results.json and the weights; train nothing",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="detect-trained-"))
    # Keep ultralytics' settings, runs and downloads out of ~ and the repo, and offline.
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(work / "config")
    try:
        if args.report:
            results = json.loads(RESULTS_JSON.read_text())
            for r in results.values():
                r["params"] = _params(HERE / r["file"])
            RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
            write_results([results[k] for k in ("yolo", "rtdetr") if k in results])
            return
        make_data(work / "train")
        if args.data_only:
            return
        import torch

        torch.set_num_threads(THREADS)
        from ultralytics.data import utils as data_utils

        # The dataset check fetches Arial.ttf for plots we do not make: without this it asks the network.
        data_utils.check_font = lambda *a, **k: None
        data = _train_yaml(work / "train", work)
        for kind in [args.only] if args.only else ["yolo", "rtdetr"]:
            result = train(kind, data, work)
            print(json.dumps(result), flush=True)
            # Kept per model, so that remaking one of the two keeps the other's figures.
            results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
            results[kind] = result
            RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
            write_results([results[k] for k in ("yolo", "rtdetr") if k in results])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        (VAL_DIR / "labels.cache").unlink(missing_ok=True)  # ultralytics' val leaves it beside labels/


if __name__ == "__main__":
    sys.exit(main())
