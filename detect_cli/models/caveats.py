"""Things the user set that will not do what they may expect with a model (`--iou` on an NMS-free model, a
config with random weights), said once per run whatever the command."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from detect_cli.models.detector import Detector


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
