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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from detect_cli.compare.accuracy import detections_to_coco, evaluate
from detect_cli.compare.agreement import AgreementTally, ImageMatch, match_detections, shared_class_names
from detect_cli.compare.analysis import (
    WHOLE_ANALYSIS,
    Analysis,
    Evidence,
    ModelEvidence,
    PairEvidence,
    analyse,
)
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


@runtime_checkable
class PhasedProgress(Progress, Protocol):
    """A progress display that can also say an untimed phase: `phase("warming up rtdetr-l")` before the
    first picture (the display's clock and rate do not count it), `phase(None)` when the timed run
    begins."""

    def phase(self, text: str | None) -> None: ...


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
    shared, notes = shared_class_names(detectors)
    scored = _scored_classes(labels, shared, notes) if labels is not None else {}
    kept = _Kept(detectors, settings, labels, shared, scored)
    interrupted = _each_frame(kept, frames, on_image, progress, total, stop)
    # A stop from here on (Ctrl-C while measuring memory or analysing) leaves out the steps not begun:
    # every input was compared, the report says what is missing (`cut_short`), the run is interrupted.
    after = stop if stop is not None and not interrupted else None
    models, cut_short = kept.model_results(None if interrupted else memory, after)
    if labels is not None and not kept.evaluated_ids and not interrupted:
        raise LabelsError("labels do not match the images: no labelled image could be read")
    analysed = _analysed(kept.evidence(models), status, after)
    cut_short += analysed.cut_short if analysed is not None else (WHOLE_ANALYSIS,)
    c = kept.comparison(models, notes, interrupted or bool(cut_short), analysed)
    return replace(c, cut_short=cut_short)


def _scored_classes(labels: GroundTruth, shared: Sequence[str], notes: list[str]) -> dict[str, int]:
    """The label categories every model knows, casefolded name → category id: only they are scored.
    The labels' own notes, and which of their classes are left out, go to `notes`; labels that share no
    class with the models are refused (LabelsError)."""
    shared_keys = frozenset(n.casefold() for n in shared)
    category_by_name = {n.casefold(): c for c, n in labels.categories.items() if n.casefold() in shared_keys}
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
    return category_by_name


def _each_frame(
    kept: _Kept,
    frames: Iterable[Frame],
    on_image: ImageCallback | None,
    progress: Progress | None,
    total: int | None,
    stop: Stop | None,
) -> bool:
    """Every frame through the models into `kept`, then to `on_image`; True when a stop cut it short.
    A first Ctrl-C finishes the frame in hand (so the numbers, detections and side-by-side video cover
    the same frames), a second stops at once; the report covers what was done either way."""
    if progress:
        progress.start(total)
    phase = progress.phase if isinstance(progress, PhasedProgress) else None
    try:
        with contextlib.nullcontext(stop) if stop is not None else stop_on_signals() as stop:
            for n, frame in enumerate(frames):
                results = kept.frame(n, frame, phase)
                if on_image:
                    on_image(frame, results)
                kept.seen += 1
                if progress:
                    progress.advance(next((r for r in results if not r.ok), results[0]))
                if stop.is_set():
                    break
            return stop.is_set()
    except KeyboardInterrupt:
        return True
    finally:
        if progress:
            progress.stop()


def _analysed(evidence: Evidence, status: Callable[[str], None] | None, stop: Stop | None) -> Analysis | None:
    """The analysis of what the loop kept, cut short at a step's end once `stop` is set; None when a
    KeyboardInterrupt stops it (a second Ctrl-C, or a first one once the loop's own handlers are gone):
    the measurements are then reported without it, and the comparison's `cut_short` says so."""
    if stop is not None:
        stop.finishing = "the analysis step in hand, leaving out the others"
    try:
        return analyse(evidence, status=status, stop=stop)
    except KeyboardInterrupt:
        return None


class _Kept:
    """What the loop keeps as it goes: per model its calls, boxes and COCO rows (`_ModelTally`), per pair
    its matches, per input its agreement, the inputs that failed, the labelled images scored, and the
    first images (for the memory probe)."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        settings: CompareSettings,
        labels: GroundTruth | None,
        shared: tuple[str, ...],
        category_by_name: dict[str, int],
    ) -> None:
        self.detectors = detectors
        self.settings = settings
        self.labels = labels
        self.shared = shared
        self.shared_keys = frozenset(n.casefold() for n in shared)
        self.category_by_name = category_by_name
        self.names = model_labels(detectors)
        self.tallies = [_ModelTally() for _ in detectors]
        self.pairs = [(i, j) for i in range(len(detectors)) for j in range(i + 1, len(detectors))]
        self.agreement = {p: AgreementTally(self.names[p[0]], self.names[p[1]]) for p in self.pairs}
        self.per_pair = {p: PairEvidence(*p) for p in self.pairs}  # per-input counts, for the bootstrap
        self.failed: list[tuple[str, str]] = []
        self.evaluated_ids: list[int] = []
        self.per_input: list[InputAgreement] = []
        self.first_images: list[np.ndarray] = []
        self.warmed = False
        self.seen = 0

    def frame(
        self, n: int, frame: Frame, phase: Callable[[str | None], None] | None = None
    ) -> list[ImageResult]:
        """Every model on the `n`th frame, timed; when none failed, their boxes matched pair by pair and,
        for a labelled image, scored. The per-model results, in `detectors` order. `phase` is told of
        the warm-up before the first timed call (`PhasedProgress.phase`)."""
        if frame.image is not None:
            self._warm_up(frame.image, phase)
        results = _run_one(self.detectors, self.tallies, frame, self.settings, n)
        errors = [r.error for r in results if r.error]
        if errors:
            self.failed.append((frame.source, errors[0]))
            return results
        self._match(n, frame, results)
        if self.labels is not None and frame.source in self.labels.image_ids:
            self._score(frame, self.labels.image_ids[frame.source])
        return results

    def _warm_up(self, image: np.ndarray, phase: Callable[[str | None], None] | None) -> None:
        """The first images kept for the memory probe; before the first timed call, --warmup untimed ones,
        each model's said to `phase` as it begins, and the end of the warm-up (None) once all are done."""
        if len(self.first_images) < MEMORY_IMAGES:
            self.first_images.append(image)
        if self.warmed:
            return
        self.warmed = True
        if not self.settings.warmup:
            return
        for label, d in zip(self.names, self.detectors, strict=True):
            if phase:
                phase(f"warming up {label}")
            for _ in range(self.settings.warmup):
                d.predict([image])
        if phase:
            phase(None)

    def _match(self, n: int, frame: Frame, results: Sequence[ImageResult]) -> None:
        matches = []
        for (i, j), tally in self.agreement.items():
            match = match_detections(
                results[i].detections, results[j].detections, self.settings.match_iou, self.shared_keys
            )
            tally.add(match)
            self.per_pair[(i, j)].add(n, len(match.matched), len(match.only_a), len(match.only_b))
            matches.append(match)
        self.per_input.append(_input_agreement(frame, matches))

    def _score(self, frame: Frame, image_id: int) -> None:
        """Every model again at the eval conf, its boxes kept as COCO rows for pycocotools."""
        rows = []
        for d in self.detectors:
            with _conf(d, self.settings.eval_conf):
                [(dets, _)] = d.predict([frame.image])
            h, w = frame.image.shape[:2]
            dets = clip_detections(dets, w, h)
            rows.append(detections_to_coco(dets, image_id, self.category_by_name))
        # counted once every model has its rows (a second Ctrl-C may stop mid-way)
        self.evaluated_ids.append(image_id)
        for t, r in zip(self.tallies, rows, strict=True):
            t.eval_rows.append(r)

    def model_results(
        self, memory: MemoryProbe | None, stop: Stop | None = None
    ) -> tuple[list[ModelResult], tuple[str, ...]]:
        """Each model's figures, scored against the labels when any image was; `memory` (none once the
        run was interrupted) measures each on the first images, unless `stop` was set before its turn;
        a KeyboardInterrupt (a second Ctrl-C) stops the measurement in hand and leaves out the rest.
        The results, and the memory figures a stop left out."""
        first = self.first_images[0].shape[:2] if self.first_images else None
        results, left_out = [], []
        probe = memory if self.first_images else None
        for label, d, t in zip(self.names, self.detectors, self.tallies, strict=True):
            measured = None
            if probe is not None and stop is not None and stop.is_set():
                probe = None
            if probe is not None:
                if stop is not None:
                    stop.finishing = f"the measurement of the peak memory of {label}, leaving out the rest"
                try:
                    measured = probe(d, self.first_images)
                except KeyboardInterrupt:
                    probe = None
            if memory is not None and self.first_images and probe is None:
                left_out.append(f"the peak memory of {label}")
            results.append(self._model_result(label, d, t, first, measured))
        return results, tuple(left_out)

    def _model_result(
        self,
        label: str,
        d: Detector,
        t: _ModelTally,
        first: tuple[int, int] | None,
        memory: Memory | None,
    ) -> ModelResult:
        accuracy = None
        if self.labels is not None and self.evaluated_ids:
            import numpy as np

            accuracy = evaluate(
                self.labels,
                np.concatenate(t.eval_rows) if t.eval_rows else np.zeros((0, 7)),
                self.shared,
                self.evaluated_ids,
                conf=self.settings.conf,
                eval_conf=self.settings.eval_conf,
                max_det=d.options.max_det,
            )
        return ModelResult(
            info=model_info(label, d, first),
            speed=SpeedStats.from_calls(t.speeds, t.wall_ms),
            images_ok=t.ok,
            images_failed=t.failed,
            detections=sum(t.per_class.values()),
            detections_per_class=dict(t.per_class.most_common()),
            accuracy=accuracy,
            memory=memory,
        )

    def evidence(self, models: Sequence[ModelResult]) -> Evidence:
        """What the analysis needs (analysis.py): per model its timed calls, boxes and COCO rows, per
        pair its per-input counts."""
        import numpy as np

        return Evidence(
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
                for m, d, t in zip(models, self.detectors, self.tallies, strict=True)
            ],
            pairs=[self.per_pair[p] for p in self.pairs],
            conf=self.settings.conf,
            eval_conf=self.settings.eval_conf,
            match_iou=self.settings.match_iou,
            shared=self.shared,
            labels=self.labels,
            evaluated_ids=self.evaluated_ids,
        )

    def comparison(
        self, models: Sequence[ModelResult], notes: list[str], interrupted: bool, analysed: Analysis | None
    ) -> Comparison:
        return Comparison(
            settings=self.settings,
            models=tuple(models),
            pairs=tuple(self.agreement[p].result() for p in self.pairs),
            shared_classes=self.shared,
            inputs=self.seen,
            failed=tuple(self.failed),
            labels=self.labels.path if self.labels else None,
            notes=tuple(notes),
            interrupted=interrupted,
            per_input=tuple(self.per_input),
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
        # `frame`, `time_s`: set for video frames; every record names the weights that made it.
        at = {"frame": frame.frame, "time_s": frame.time_s, "weights_sha256": d.weights_sha256}
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
                    ran = {"backend": d.backend, "precision": d.precision}  # as `detect image` records
                    results[i] = ImageResult(frame.source, d.name, w, h, speed, boxes, **at, **ran)
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
