"""Typed results: what a model found in one image (or video frame), and the totals of a run."""

from __future__ import annotations

import contextlib
import math
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
    `weights_sha256` names the model's weights by content (`backends.weights_digest`: the weights file's
    sha256, or for a model built from a config, a digest of that config), so a resumed run can tell
    other weights under the same model name; None in records written before it was.
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
    weights_sha256: str | None = None

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
            **{
                k: v
                for k, v in (
                    ("backend", self.backend),
                    ("precision", self.precision),
                    ("weights_sha256", self.weights_sha256),
                )
                if v is not None
            },
            speed_ms=self.speed_ms.to_dict() if self.speed_ms else None,
            detections=[det.to_dict() for det in self.detections],
            error=self.error,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageResult:
        """The result a record describes; BadRecord when it is not one (see `check_record`)."""
        check_record(d)
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
            weights_sha256=d.get("weights_sha256"),
        )


class BadRecord(ValueError):
    """A line of a results.jsonl (or frames.jsonl) that is JSON but not a record `to_dict` could write."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(d: dict[str, Any], key: str, ok: Any) -> None:
    value = d.get(key)
    if value is not None and not ok(value):
        raise BadRecord(f"{key!r} is {value!r}")


def _check_detection(det: Any) -> None:
    if not isinstance(det, dict):
        raise BadRecord(f"a detection is {det!r}")
    if not _integer(det.get("class_id")) or not isinstance(det.get("class_name"), str):
        raise BadRecord(f"a detection's class is {det.get('class_id')!r} {det.get('class_name')!r}")
    if not _number(det.get("confidence")):
        raise BadRecord(f"a detection's confidence is {det.get('confidence')!r}")
    box = det.get("xyxy")
    if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
        raise BadRecord(f"a detection's box is {box!r}")
    if box[2] < box[0] or box[3] < box[1]:
        raise BadRecord(f"a detection's box corners are out of order: {box!r}")


def check_record(d: Any) -> dict[str, Any]:
    """`d` itself when it is a record of the shape `ImageResult.to_dict` writes, else BadRecord saying
    what is wrong. The one check every reader of a run's record applies (through `writers.iter_jsonl`),
    so a line of the wrong shape is set aside like a line that is not JSON, never a crash later on."""
    if not isinstance(d, dict):
        raise BadRecord(f"not a JSON object: {type(d).__name__}")
    for key in ("source", "model"):
        if not isinstance(d.get(key), str):
            raise BadRecord(f"{key!r} is {d.get(key)!r}")
    for key in ("path", "error", "backend", "precision", "weights_sha256"):
        _optional(d, key, lambda v: isinstance(v, str))
    for key in ("size", "mtime_ns", "width", "height", "frame"):
        _optional(d, key, lambda v: _integer(v) and v >= 0)
    _optional(d, "time_s", _number)
    speed = d.get("speed_ms")
    if speed is not None and not (
        isinstance(speed, dict)
        and set(speed) == {"preprocess", "inference", "postprocess"}
        and all(_number(v) for v in speed.values())
    ):
        raise BadRecord(f"'speed_ms' is {speed!r}")
    detections = d.get("detections", [])
    if not isinstance(detections, list):
        raise BadRecord(f"'detections' is {detections!r}")
    for det in detections:
        _check_detection(det)
    return d


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
