"""What `detect compare` asks for (`CompareJob`, plain values the CLI builds) and what it gets back
(`CompareRun`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detect_cli.backends import Plan
from detect_cli.compare.results import CompareSettings, Comparison, Picture
from detect_cli.models import ModelRef, PredictOptions
from detect_cli.sources import DEFAULT_MAX_PIXELS, DEFAULT_URL_TIMEOUT_S
from detect_cli.tracking import TrackerConfig


@dataclass(frozen=True)
class CompareJob:
    """Everything `detect compare` needs, as plain values."""

    sources: tuple[str, ...]
    models: tuple[ModelRef, ...]
    options: PredictOptions
    settings: CompareSettings
    data: Path | None = None  # labels: a YOLO data.yaml ...
    coco: Path | None = None  # ... or a COCO annotations json (images only)
    out: Path | None = None  # None: a new detect-runs/compare[-N]
    exist_ok: bool = False
    save: bool = True  # side-by-side pictures, or for videos the side-by-side video
    recursive: bool = True
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    vid_stride: int = 1
    max_frames: int | None = None
    reconnects: int = 3
    plan: Plan = field(default_factory=Plan)  # the same backend for every model, decided once
    # `--backends`: one plan per entry of `models` (the same model on several backends and precisions),
    # the PyTorch fp32 reference first; the report then holds the fidelity matrix.
    plans: tuple[Plan, ...] = ()
    classes: str | None = None  # --classes, resolved against each model's names
    iou_given: bool = False
    command: tuple[str, ...] = ()  # the command line as run (sys.argv), for the report's environment
    memory: bool = True  # measure each model's peak memory (machine.py), a child process per model
    explain: int = 0  # explain this many of the first images (RT-DETR's attention beside YOLO's map)
    tracker: TrackerConfig | None = None  # --track: every model's boxes tracked (videos only)
    mot_gt: Path | None = None  # --mot-gt: MOTChallenge ground truth to score the tracks against

    @property
    def labelled(self) -> bool:
        """Labels were given (--data or --coco): accuracy is measured."""
        return self.data is not None or self.coco is not None


@dataclass
class CompareRun:
    """A finished (or interrupted) comparison and where its report went."""

    comparison: Comparison
    out: Path
    pictures: list[Picture]
    signum: int | None = None  # the signal that stopped the run, when one did
