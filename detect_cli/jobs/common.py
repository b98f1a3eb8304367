"""What every inference job shares: the plain values a command hands over, and the warnings about
options that will not do what the user may expect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from detect_cli.backends import Plan
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.sources import DEFAULT_MAX_PIXELS, DEFAULT_URL_TIMEOUT_S


@dataclass(frozen=True)
class Job:
    """What every inference command shares, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    options: PredictOptions
    out: Path | None = None  # None: a new folder under detect-runs/ named after the command
    run_name: str = "image"
    exist_ok: bool = False
    formats: tuple[str, ...] = ("jsonl",)
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger pictures (and video frames) are refused unread
    batch: int = 1
    classes: str | None = None
    iou_given: bool = False
    plan: Plan = field(default_factory=Plan)  # backend, device and precision, decided once (backends.plan)


def warn_about_options(
    detectors: Iterable[Detector | None], iou_given: bool, warn: Callable[[str], None] | None
) -> None:
    """Each of `option_warnings` once, for all the models of a run."""
    said: set[str] = set()
    for detector in detectors:
        for note in option_warnings(detector, iou_given) if detector is not None and warn else ():
            if note not in said:
                said.add(note)
                warn(note)  # type: ignore[misc]


def option_warnings(detector: Detector, iou_given: bool) -> list[str]:
    """Things the user set that will not do what they may expect with this model."""
    notes = []
    if detector.nms_free and iou_given and not detector.options.nms:
        notes.append(
            f"{detector.name} is NMS-free (it predicts one box per object, without NMS), so --iou has no "
            "effect on it; add --nms to apply class-wise NMS at --iou"
        )
    if detector.ref.untrained and not detector.ref.stand_in:  # a stand-in was announced as it loaded
        notes.append(
            f"{detector.ref.location} is a model config: its weights are random (untrained), "
            "so its detections are meaningless"
        )
    return notes
