"""Typed results: what a model found in one image (or video frame), and the totals of a run."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """One box. Field names follow supervision/ultralytics: `xyxy` in pixels of the original image."""

    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.xyxy
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box corners out of order: {self.xyxy}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 6),
            "xyxy": [round(v, 3) for v in self.xyxy],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Detection:
        return cls(int(d["class_id"]), str(d["class_name"]), float(d["confidence"]), tuple(d["xyxy"]))


@dataclass(frozen=True, slots=True)
class Speed:
    """Milliseconds per stage, as ultralytics measures them."""

    preprocess: float
    inference: float
    postprocess: float

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess

    def to_dict(self) -> dict[str, float]:
        return {
            "preprocess": round(self.preprocess, 3),
            "inference": round(self.inference, 3),
            "postprocess": round(self.postprocess, 3),
        }


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The outcome for one input: its detections, or the error that stopped it.

    `frame` and `time_s` are set for video frames and left None for still images. `path` (absolute),
    `size` and `mtime_ns` identify a file input, so a resumed run can tell a done input from a changed
    one; they are None for URLs (and size/mtime for a file that could not be opened). `backend` and
    `precision` say what ran the model (None for failed inputs, and in records written before they were).
    """

    source: str
    model: str
    width: int | None = None
    height: int | None = None
    speed_ms: Speed | None = None
    detections: tuple[Detection, ...] = ()
    error: str | None = None
    frame: int | None = None
    time_s: float | None = None
    path: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    backend: str | None = None
    precision: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source}
        if self.frame is not None:
            d["frame"] = self.frame
            d["time_s"] = None if self.time_s is None else round(self.time_s, 4)
        if self.path is not None:
            d.update(path=self.path, size=self.size, mtime_ns=self.mtime_ns)
        d.update(
            width=self.width,
            height=self.height,
            model=self.model,
            **{k: v for k, v in (("backend", self.backend), ("precision", self.precision)) if v is not None},
            speed_ms=self.speed_ms.to_dict() if self.speed_ms else None,
            detections=[det.to_dict() for det in self.detections],
            error=self.error,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageResult:
        speed = d.get("speed_ms")
        return cls(
            source=d["source"],
            model=d["model"],
            width=d.get("width"),
            height=d.get("height"),
            speed_ms=Speed(**speed) if speed else None,
            detections=tuple(Detection.from_dict(x) for x in d.get("detections", [])),
            error=d.get("error"),
            frame=d.get("frame"),
            time_s=d.get("time_s"),
            path=d.get("path"),
            size=d.get("size"),
            mtime_ns=d.get("mtime_ns"),
            backend=d.get("backend"),
            precision=d.get("precision"),
        )


@dataclass
class RunSummary:
    """Running totals, updated per result so nothing is held in memory but counts."""

    processed: int = 0
    failed: int = 0
    per_class: Counter[str] = field(default_factory=Counter)
    total_ms: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    ran: Counter[str] = field(default_factory=Counter)  # "openvino, bf16": inputs each backend ran

    def add(self, result: ImageResult) -> None:
        if result.ok:
            self.processed += 1
            self.per_class.update(d.class_name for d in result.detections)
            if result.backend:
                self.ran[_ran(result)] += 1
            if result.speed_ms:
                self.total_ms += result.speed_ms.total
        else:
            self.failed += 1
            if len(self.failures) < 20:  # enough to show; the full list is in results.jsonl
                self.failures.append((result.source, result.error or ""))

    def retract(self, result: ImageResult) -> None:
        """Take back a result counted by `add` (one whose outputs then failed to be written)."""
        if result.ok:
            self.processed -= 1
            self.per_class.subtract(d.class_name for d in result.detections)
            self.per_class += Counter()  # drop classes left at zero
            if result.backend:
                self.ran[_ran(result)] -= 1
                self.ran += Counter()
            if result.speed_ms:
                self.total_ms -= result.speed_ms.total
        else:
            self.failed -= 1
            with contextlib.suppress(ValueError):
                self.failures.remove((result.source, result.error or ""))

    @property
    def ran_on(self) -> str | None:
        """What ran the processed inputs, as their records say ("openvino, bf16"); each with its
        count when they differ (Ray workers plan the backend on their own machines)."""
        if len(self.ran) <= 1:
            return next(iter(self.ran), None)
        return "; ".join(f"{name}: {n}" for name, n in self.ran.most_common())

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.processed if self.processed else None

    @property
    def detections(self) -> int:
        return sum(self.per_class.values())


def _ran(result: ImageResult) -> str:
    return ", ".join(v for v in (result.backend, result.precision) if v)
