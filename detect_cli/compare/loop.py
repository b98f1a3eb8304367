"""The comparison loop (`run_comparison`): every model on each frame of one stream, measured.

The inputs arrive as one stream of `Frame`s, decoded images or video frames alike; each frame is decoded
once and given to every model. The models are run frame by frame, interleaved (their order rotates from
one frame to the next), so drift on a busy machine hits all of them alike. Speed comes from timed calls
after warm-up; agreement from one-to-one matching of their detections (agreement.py); accuracy, when
labels are given, from pycocotools on COCO-format results (accuracy.py). After the loop, what it kept is
analysed (analysis.py).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from detect_cli.compare.accuracy import detections_to_coco, evaluate
from detect_cli.compare.agreement import AgreementTally, ImageMatch, match_detections, shared_class_names
from detect_cli.compare.analysis import Evidence, ModelEvidence, PairEvidence, analyse
from detect_cli.compare.labels import GroundTruth
from detect_cli.compare.machine import MEMORY_IMAGES
from detect_cli.compare.model_facts import model_info, model_labels
from detect_cli.compare.results import (
    P95_MIN_CALLS,
    CompareSettings,
    Comparison,
    InputAgreement,
    Memory,
    ModelResult,
    SpeedStats,
)
from detect_cli.errors import BadOptionError, LabelsError
from detect_cli.geometry import clip_detections
from detect_cli.models import Detector
from detect_cli.pipeline import Frame, Progress
from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.signals import Stop, stop_on_signals

if TYPE_CHECKING:
    import numpy as np


@contextlib.contextmanager
def _conf(detector: Detector, conf: float) -> Iterator[None]:
    """Run a detector at another confidence threshold for a while (the accuracy pass)."""
    saved = detector.options
    detector.options = replace(saved, conf=conf)
    try:
        yield
    finally:
        detector.options = saved


class _ModelTally:
    def __init__(self) -> None:
        self.speeds: list[Speed] = []
        self.wall_ms: list[float] = []
        self.call_input: list[int] = []  # which input each timed call was on (pairs calls for the bootstrap)
        self.ok = 0
        self.failed = 0
        self.per_class: Counter[str] = Counter()
        self.eval_rows: list[np.ndarray] = []
        self.detections: dict[int, tuple[Detection, ...]] = {}  # per input index, boxes at --conf


ImageCallback = Callable[[Frame, Sequence[ImageResult]], None]
MemoryProbe = Callable[[Detector, Sequence["np.ndarray"]], Memory | None]


def _input_agreement(frame: Frame, matches: Sequence[ImageMatch]) -> InputAgreement:
    """One input's agreement: the mean over pairs that found any box of 2·matched / (boxes of A + B)."""
    scores = []
    boxes = 0
    for m in matches:
        total = 2 * len(m.matched) + len(m.only_a) + len(m.only_b)
        boxes += total
        if total:
            scores.append(2 * len(m.matched) / total)
    agreement = sum(scores) / len(scores) if scores else None
    return InputAgreement(frame.source, str(frame.rel_path), agreement, boxes, frame.frame, frame.time_s)


def timed_runs(settings: CompareSettings, inputs: int | None) -> CompareSettings:
    """Enough timed calls per model for a p95 and a speed interval: with fewer than `P95_MIN_CALLS`
    inputs times runs, runs rise to reach it (the report says so). An unknown total (a live stream)
    keeps --runs."""
    if not inputs or inputs * settings.runs >= P95_MIN_CALLS:
        return settings
    return replace(settings, runs=-(-P95_MIN_CALLS // inputs), runs_asked=settings.runs)


def run_comparison(
    detectors: Sequence[Detector],
    frames: Iterable[Frame],
    settings: CompareSettings,
    labels: GroundTruth | None = None,
    on_image: ImageCallback | None = None,
    progress: Progress | None = None,
    total: int | None = None,
    stop: Stop | None = None,
    memory: MemoryProbe | None = None,
    status: Callable[[str], None] | None = None,
) -> Comparison:
    """Run every detector on every frame and measure. `frames` are decoded images
    (`pipeline.image_frames`) or video frames (`video.video_frames`); `total` is their number when
    known, for the progress bar. `on_image` gets each frame and the per-model results (in `detectors`
    order), e.g. to draw side-by-side pictures or a side-by-side video as the run goes. `stop` is the
    run's stop flag (`signals.stop_on_signals`); without one, the comparison installs its own.
    `memory`, when given, measures each model's peak memory on the first `MEMORY_IMAGES` inputs, after
    the loop (machine.measure_memory). At the end, the evidence collected is analysed (analysis.py:
    intervals, operating points, slices, error types); `status` is told when that may take a while."""
    if len(detectors) < 2:
        raise BadOptionError("compare needs at least two models")
    settings = timed_runs(settings, total)
    labels_ = model_labels(detectors)
    shared, notes = shared_class_names(detectors)
    shared_keys = frozenset(n.casefold() for n in shared)
    category_by_name: dict[str, int] = {}
    if labels is not None:
        category_by_name = {
            n.casefold(): c for c, n in labels.categories.items() if n.casefold() in shared_keys
        }
        if not category_by_name:
            raise LabelsError(f"the labels ({labels.path}) share no class names with the models")
        notes += list(labels.notes)
        unknown = [n for n in labels.categories.values() if n.casefold() not in shared_keys]
        if unknown:
            notes.append(
                f"{len(unknown)} label classes are not known to every model and are not scored: "
                + ", ".join(unknown[:8])
                + (" …" if len(unknown) > 8 else "")
            )
    tallies = [_ModelTally() for _ in detectors]
    pairs = [(i, j) for i in range(len(detectors)) for j in range(i + 1, len(detectors))]
    agreement = {p: AgreementTally(labels_[p[0]], labels_[p[1]]) for p in pairs}
    per_pair = {p: PairEvidence(*p) for p in pairs}  # per-input counts, for the bootstrap
    failed: list[tuple[str, str]] = []
    evaluated_ids: list[int] = []
    per_input: list[InputAgreement] = []
    first_images: list[np.ndarray] = []
    warmed = False
    interrupted = False
    seen = 0
    if progress:
        progress.start(total)
    # A first Ctrl-C finishes the frame in hand (so the numbers, detections and side-by-side video
    # cover the same frames), a second stops at once; the report covers what was done either way.
    try:
        with contextlib.nullcontext(stop) if stop is not None else stop_on_signals() as stop:
            for n, frame in enumerate(frames):
                if frame.image is not None and len(first_images) < MEMORY_IMAGES:
                    first_images.append(frame.image)
                if frame.image is not None and not warmed:
                    for d in detectors:
                        for _ in range(settings.warmup):
                            d.predict([frame.image])
                    warmed = True
                results = _run_one(detectors, tallies, frame, settings, n)
                errors = [r.error for r in results if r.error]
                if errors:
                    failed.append((frame.source, errors[0]))
                else:
                    matches = []
                    for (i, j), tally in agreement.items():
                        match = match_detections(
                            results[i].detections, results[j].detections, settings.match_iou, shared_keys
                        )
                        tally.add(match)
                        per_pair[(i, j)].add(n, len(match.matched), len(match.only_a), len(match.only_b))
                        matches.append(match)
                    per_input.append(_input_agreement(frame, matches))
                    if labels is not None and frame.source in labels.image_ids:
                        image_id = labels.image_ids[frame.source]
                        rows = []
                        for d in detectors:
                            with _conf(d, settings.eval_conf):
                                [(dets, _)] = d.predict([frame.image])
                            h, w = frame.image.shape[:2]
                            dets = clip_detections(dets, w, h)
                            rows.append(detections_to_coco(dets, image_id, category_by_name))
                        # counted once every model has its rows (a second Ctrl-C may stop mid-way)
                        evaluated_ids.append(image_id)
                        for t, r in zip(tallies, rows, strict=True):
                            t.eval_rows.append(r)
                if on_image:
                    on_image(frame, results)
                seen += 1
                if progress:
                    progress.advance(next((r for r in results if not r.ok), results[0]))
                if stop.is_set():
                    break
            interrupted = interrupted or stop.is_set()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress:
            progress.stop()
    models = []
    first = first_images[0].shape[:2] if first_images else None
    for label, d, t in zip(labels_, detectors, tallies, strict=True):
        accuracy = None
        if labels is not None and evaluated_ids:
            import numpy as np

            accuracy = evaluate(
                labels,
                np.concatenate(t.eval_rows) if t.eval_rows else np.zeros((0, 7)),
                shared,
                evaluated_ids,
                conf=settings.conf,
                eval_conf=settings.eval_conf,
                max_det=d.options.max_det,
            )
        models.append(
            ModelResult(
                info=model_info(label, d, first),
                speed=SpeedStats.from_calls(t.speeds, t.wall_ms),
                images_ok=t.ok,
                images_failed=t.failed,
                detections=sum(t.per_class.values()),
                detections_per_class=dict(t.per_class.most_common()),
                accuracy=accuracy,
                memory=memory(d, first_images) if memory and first_images and not interrupted else None,
            )
        )
    if labels is not None and not evaluated_ids and not interrupted:
        raise LabelsError("labels do not match the images: no labelled image could be read")
    import numpy as np

    evidence = Evidence(
        models=[
            ModelEvidence(
                m.info,
                t.wall_ms,
                t.call_input,
                t.detections,
                np.concatenate(t.eval_rows) if t.eval_rows else None,
                m.accuracy,
                d.options.max_det,
            )
            for m, d, t in zip(models, detectors, tallies, strict=True)
        ],
        pairs=[per_pair[p] for p in pairs],
        conf=settings.conf,
        eval_conf=settings.eval_conf,
        match_iou=settings.match_iou,
        shared=shared,
        labels=labels,
        evaluated_ids=evaluated_ids,
    )
    try:
        analysed = analyse(evidence, status=status)
    except KeyboardInterrupt:  # a second Ctrl-C while analysing: the measurements are reported without it
        analysed, interrupted = None, True
        notes.append("stopped while analysing: no intervals, operating points or error types")
    return Comparison(
        settings=settings,
        models=tuple(models),
        pairs=tuple(agreement[p].result() for p in pairs),
        shared_classes=shared,
        inputs=seen,
        failed=tuple(failed),
        labels=labels.path if labels else None,
        notes=tuple(notes),
        interrupted=interrupted,
        per_input=tuple(per_input),
        analysis=analysed,
    )


def _run_one(
    detectors: Sequence[Detector],
    tallies: Sequence[_ModelTally],
    frame: Frame,
    settings: CompareSettings,
    n: int,
) -> list[ImageResult]:
    """Every model on one frame, `runs` timed calls each, in an order that rotates with `n`."""
    results: list[ImageResult | None] = [None] * len(detectors)
    order = [(n + k) % len(detectors) for k in range(len(detectors))]
    for i in order:
        d, t = detectors[i], tallies[i]
        at = {"frame": frame.frame, "time_s": frame.time_s}  # set for video frames
        if frame.image is None:
            results[i] = ImageResult(frame.source, d.name, error=frame.error, **at)
            t.failed += 1
            continue
        h, w = frame.image.shape[:2]
        try:
            for run in range(settings.runs):
                start = time.perf_counter()
                [(dets, speed)] = d.predict([frame.image])
                t.wall_ms.append((time.perf_counter() - start) * 1000)
                t.call_input.append(n)
                t.speeds.append(speed)
                if run == 0:
                    boxes = clip_detections(dets, w, h)
                    results[i] = ImageResult(frame.source, d.name, w, h, speed, boxes, **at)
        except Exception as e:  # one failing input must not end the comparison; it is recorded
            results[i] = ImageResult(
                frame.source, d.name, w, h, error=f"inference failed: {type(e).__name__}: {e}", **at
            )
            t.failed += 1
            continue
        t.ok += 1
        t.detections[n] = results[i].detections  # type: ignore[union-attr]
        t.per_class.update(x.class_name for x in results[i].detections)  # type: ignore[union-attr]
    return [r for r in results if r is not None]
