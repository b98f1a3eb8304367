"""The official models: names and aliases, families and designs, published accuracy and size, where
their weights are cached, COCO's class names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from detect_cli.errors import ModelError

Family = Literal["rtdetr", "yolo"]  # which ultralytics class loads it: RTDETR, or YOLO
Design = Literal["transformer", "cnn", "hybrid"]

COCO_VAL_SOURCE = "https://docs.ultralytics.com/models/ (COCO val2017, 640 px)"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """An official model: its weights file, the COCO val mAP50-95 its authors publish, its design (a
    transformer, a CNN, or a CNN with attention or an end-to-end head: a hybrid), and whether it runs
    without NMS (an end-to-end head: RT-DETR's decoder, YOLO26's one-to-one head)."""

    name: str
    family: Family
    weights: str
    published_map: float
    aliases: tuple[str, ...] = ()
    design: Design = "cnn"
    nms_free: bool = False

    @property
    def config(self) -> str:
        """The ultralytics model config that builds the same network untrained (`yolo26n.yaml`)."""
        return self.weights.removesuffix(".pt") + ".yaml"

    @property
    def ultralytics_class(self) -> str:
        return "RTDETR" if self.family == "rtdetr" else "YOLO"


# mAP50-95 on COCO val2017 at 640 px, as ultralytics publishes them:
# RT-DETR https://docs.ultralytics.com/models/rtdetr/, YOLO11 https://docs.ultralytics.com/models/yolo11/,
# YOLO12 https://docs.ultralytics.com/models/yolo12/ ("Detection Performance (COCO val2017)"),
# YOLO26 https://docs.ultralytics.com/models/yolo26/ and https://docs.ultralytics.com/tasks/detect/: the
# "mAPval 50-95(e2e)" column, the end-to-end (NMS-free) head that predict runs (40.9/48.6/53.1/55.0/57.5
# with NMS over the one-to-many head).
REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("rtdetr-l", "rtdetr", "rtdetr-l.pt", 53.0, ("rtdetr",), "transformer", nms_free=True),
    ModelSpec("rtdetr-x", "rtdetr", "rtdetr-x.pt", 54.8, (), "transformer", nms_free=True),
    ModelSpec("yolo11n", "yolo", "yolo11n.pt", 39.5, ("yolo11", "yolo")),
    ModelSpec("yolo11s", "yolo", "yolo11s.pt", 47.0),
    ModelSpec("yolo11m", "yolo", "yolo11m.pt", 51.5),
    ModelSpec("yolo11l", "yolo", "yolo11l.pt", 53.4),
    ModelSpec("yolo11x", "yolo", "yolo11x.pt", 54.7),
    # YOLO26: a CNN with an end-to-end (one-to-one, NMS-free) head; YOLO12: a CNN with area attention.
    ModelSpec("yolo26n", "yolo", "yolo26n.pt", 40.1, ("yolo26",), "hybrid", nms_free=True),
    ModelSpec("yolo26s", "yolo", "yolo26s.pt", 47.8, (), "hybrid", nms_free=True),
    ModelSpec("yolo26m", "yolo", "yolo26m.pt", 52.5, (), "hybrid", nms_free=True),
    ModelSpec("yolo26l", "yolo", "yolo26l.pt", 54.4, (), "hybrid", nms_free=True),
    ModelSpec("yolo26x", "yolo", "yolo26x.pt", 56.9, (), "hybrid", nms_free=True),
    ModelSpec("yolo12n", "yolo", "yolo12n.pt", 40.6, ("yolo12",), "hybrid"),
    ModelSpec("yolo12s", "yolo", "yolo12s.pt", 48.0, (), "hybrid"),
    ModelSpec("yolo12m", "yolo", "yolo12m.pt", 52.5, (), "hybrid"),
    ModelSpec("yolo12l", "yolo", "yolo12l.pt", 53.7, (), "hybrid"),
    ModelSpec("yolo12x", "yolo", "yolo12x.pt", 55.2, (), "hybrid"),
)
DEFAULT_MODEL: dict[Family, str] = {"rtdetr": "rtdetr-l", "yolo": "yolo11n"}

# Parameters (M) and FLOPs (B, at 640 px) as the authors publish them, for placing a compared model among
# its family's sizes (compare's report): YOLO11 https://docs.ultralytics.com/models/yolo11/, YOLO12
# https://docs.ultralytics.com/models/yolo12/, YOLO26 https://docs.ultralytics.com/models/yolo26/ (the
# "params (M)" and "FLOPs (B)" columns); RT-DETR https://github.com/lyuwenyu/RT-DETR (RT-DETR-HGNetv2-L
# and -X, "#Params(M)" and "GFLOPs").
PUBLISHED_SIZE: dict[str, tuple[float, float]] = {
    "rtdetr-l": (32.0, 110.0),
    "rtdetr-x": (67.0, 234.0),
    "yolo11n": (2.6, 6.5),
    "yolo11s": (9.4, 21.5),
    "yolo11m": (20.1, 68.0),
    "yolo11l": (25.3, 86.9),
    "yolo11x": (56.9, 194.9),
    "yolo26n": (2.4, 5.4),
    "yolo26s": (9.5, 20.7),
    "yolo26m": (20.4, 68.2),
    "yolo26l": (24.8, 86.4),
    "yolo26x": (55.7, 193.9),
    "yolo12n": (2.6, 6.5),
    "yolo12s": (9.3, 21.4),
    "yolo12m": (20.2, 67.5),
    "yolo12l": (26.4, 88.9),
    "yolo12x": (59.1, 199.0),
}


def family_of(name: str) -> str:
    """The published series an official model belongs to: "rtdetr", "yolo11", "yolo26", "yolo12"."""
    return "rtdetr" if name.startswith("rtdetr") else name[:-1]


MODEL_SUFFIXES = (".pt", ".yaml", ".yml", ".onnx", ".engine", ".torchscript")


def get_spec(name: str) -> ModelSpec | None:
    key = name.lower().removesuffix(".pt")
    return next((s for s in REGISTRY if key == s.name or key in s.aliases), None)


def cache_dir() -> Path:
    """Per-user cache: $DETECT_CACHE_DIR, else $XDG_CACHE_HOME/detect-cli, else ~/.cache/detect-cli."""
    if env := os.environ.get("DETECT_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "detect-cli"


def weights_path(spec: ModelSpec) -> Path:
    return cache_dir() / "weights" / spec.weights


def coco_names() -> dict[int, str]:
    """The 80 COCO class names, as ultralytics ships them (cfg/datasets/coco.yaml): the official
    models' classes. Read from the file, without importing ultralytics (a run on a cached export
    imports neither it nor torch)."""
    import importlib.util

    import yaml

    found = importlib.util.find_spec("ultralytics")
    if found is None or found.origin is None:
        raise ModelError("ultralytics is not installed: it ships the COCO class names")
    coco = Path(found.origin).parent / "cfg" / "datasets" / "coco.yaml"
    names = yaml.safe_load(coco.read_text(encoding="utf-8"))["names"]
    return {int(k): str(v) for k, v in names.items()}


def is_coco80(names: dict[int, str]) -> bool:
    """True for models trained on (or configured with) the 80 COCO classes."""
    return len(names) == 80 and names.get(0) == "person" and names.get(79) == "toothbrush"


def catalog() -> list[dict[str, Any]]:
    """Every official model with where its weights live and whether they are there (for `detect models`)."""
    rows = []
    for spec in REGISTRY:
        path = weights_path(spec)
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "design": spec.design,
                "nms_free": spec.nms_free,
                "ultralytics_class": spec.ultralytics_class,
                "aliases": list(spec.aliases),
                "published_map50_95": spec.published_map,
                "published_source": COCO_VAL_SOURCE,
                "weights": str(path),
                "present": path.is_file(),
                "size_mb": round(path.stat().st_size / 2**20, 1) if path.is_file() else None,
            }
        )
    return rows
