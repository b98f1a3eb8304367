"""What `detect explain` finds for one image: each explained detection's sampling points and attention
spread, YOLO's activation; `ImageExplanation.to_dict` is its explain.jsonl line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class SamplingPoint:
    """One deformable-attention sample of a query: where (pixels of the original image) and how much."""

    head: int
    level: int
    point: int
    x: float
    y: float
    weight: float  # softmax over the levels x points of one head: a head's weights sum to 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "level": self.level,
            "point": self.point,
            "xy": [round(self.x, 2), round(self.y, 2)],
            "weight": round(self.weight, 6),
        }


@dataclass(frozen=True, slots=True)
class AttentionSpread:
    """How far the encoder token at a box centre looked: attention-weighted distance, mass outside the box."""

    grid: tuple[int, int]  # (rows, cols) of AIFI's token grid (the stride-32 level)
    token: tuple[int, int]  # (row, col) of the query token, the one holding the box centre
    mean_distance_px: float  # sum over tokens of weight x distance between token centres, in pixels
    share_outside_box: float  # attention mass on tokens whose centre lies outside the box

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": list(self.grid),
            "token": list(self.token),
            "mean_distance_px": round(self.mean_distance_px, 2),
            "share_outside_box": round(self.share_outside_box, 4),
        }


@dataclass(frozen=True, slots=True)
class ExplainedDetection:
    """An RT-DETR detection, the decoder query that produced it and what that query attended to."""

    detection: Detection
    query: int
    sampling_points: tuple[SamplingPoint, ...]
    spread: AttentionSpread
    heatmap: np.ndarray = field(repr=False, compare=False)  # encoder attention, image-sized (H, W) float32

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.detection.to_dict(),
            "query": self.query,
            "attention_spread": self.spread.to_dict(),
            "sampling_points": [p.to_dict() for p in self.sampling_points],
        }


@dataclass(frozen=True, slots=True)
class YoloActivation:
    """EigenCAM of a YOLO model on one image, with that model's detections for the same image."""

    model: str
    detections: tuple[Detection, ...]
    heatmap: np.ndarray = field(repr=False, compare=False)  # image-sized (H, W) float32 in [0, 1]
    explained_variance: tuple[float, ...]  # share of each neck level's variance that its map keeps

    def to_dict(self, objects: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "count": len(self.detections),
            "detections": [d.to_dict() for d in self.detections[:objects]],
            "eigencam_explained_variance": [round(v, 4) for v in self.explained_variance],
        }


@dataclass(frozen=True, slots=True)
class ImageExplanation:
    """Everything `explain` found for one image; `to_dict` is its explain.jsonl line."""

    source: str
    width: int
    height: int
    model: str
    detections_total: int
    explained: tuple[ExplainedDetection, ...]
    yolo: YoloActivation | None = None
    picture: str | None = None
    error: str | None = None

    def to_dict(self, objects: int = 5) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height}
        out["model"] = self.model
        if self.error:
            return {**out, "error": self.error}
        out["picture"] = self.picture
        out["count"] = self.detections_total
        if not self.detections_total:
            out["note"] = "no detections"
        out["detections"] = [d.to_dict() for d in self.explained]
        out["yolo"] = self.yolo.to_dict(objects) if self.yolo else None
        return out
