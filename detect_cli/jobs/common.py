"""What every inference job shares: the plain values a command hands over (the warnings about options
are models.caveats, the check of each source's kind sources.inputs.refuse_other_kind)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detect_cli.backends import Plan
from detect_cli.models import ModelRef, PredictOptions
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
