"""What every inference job shares: the plain values a command hands over, and the warnings about
options that will not do what the user may expect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from detect_cli.backends import Plan
from detect_cli.errors import BadOptionError
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.sources import DEFAULT_MAX_PIXELS, DEFAULT_URL_TIMEOUT_S, named_kind


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


# By a run's name: its command, and the one that reads the other kind of input.
COMMANDS = {
    "image": ("detect image", "detect video"),
    "yolo-image": ("detect yolo image", "detect yolo video"),
    "explain": ("detect explain", "detect video"),
    "video": ("detect video", "detect image"),
    "yolo-video": ("detect yolo video", "detect yolo image"),
}


def refuse_other_kind(sources: Iterable[str], wanted: str, run_name: str) -> None:
    """A file (or URL) whose suffix says it is the other kind than this command reads is a mistake of
    command, said before any model loads: a video given to `detect image` would fail as an unreadable
    picture after the model loaded, a picture given to `detect video` would quietly become a one-frame
    video. Folders and globs pick their own kind and are not refused."""
    import shlex

    this, other = COMMANDS.get(
        run_name, (f"detect {wanted}", "detect image" if wanted == "video" else "detect video")
    )
    for source in sources:
        kind = named_kind(source)
        if kind is not None and kind != wanted:
            what, reads = ("a video", "pictures") if kind == "video" else ("a picture", "videos")
            raise BadOptionError(
                f"{source} is {what}; `{this}` reads {reads}: run `{other} {shlex.quote(source)}`"
            )
