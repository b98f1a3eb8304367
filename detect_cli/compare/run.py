"""`detect compare` end to end: SOURCE arguments → images or videos → one stream of frames → the models
(`run_comparison`) → detections, side-by-side pictures or videos, and the report.

The inputs arrive as one stream of `Frame`s, decoded images or video frames alike; each frame is decoded
once and given to every model. The models are run frame by frame, interleaved (their order rotates from
one frame to the next), so drift on a busy machine hits all of them alike. Speed comes from timed calls
after warm-up; agreement from one-to-one matching of their detections (agreement.py); accuracy, when
labels are given, from pycocotools on COCO-format results (accuracy.py). report.py presents the result.

A run compares images or videos, never both: what one input is (an image, or a video frame) decides
what the numbers mean, and labels apply to images only. Videos are opened before any model loads (a
bad source fails fast), decoded once in a background thread (`video.video_frames`), and every model
gets the same decoded frame.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from detect_cli import video
from detect_cli.backends import calibrated, load_detector
from detect_cli.compare.accuracy import detections_to_coco, evaluate
from detect_cli.compare.agreement import AgreementTally, ImageMatch, match_detections, shared_class_names
from detect_cli.compare.analysis import Evidence, ModelEvidence, PairEvidence, analyse
from detect_cli.compare.fidelity import FidelityTally
from detect_cli.compare.inputs import Inputs, check_tracking, image_inputs, source_kind, video_inputs
from detect_cli.compare.job import CompareJob, CompareRun
from detect_cli.compare.labels import GroundTruth, load_labels
from detect_cli.compare.machine import MEMORY_IMAGES, environment, measure_memory
from detect_cli.compare.model_facts import model_info, model_labels
from detect_cli.compare.outputs import (
    SIDE_BY_SIDE,
    CompareOutputs,
    FileList,
    holds_comparison,
    remove_listed,
)
from detect_cli.compare.report import HTML_PICTURES, REPORT_FILES, REPORT_RECORD, write_report
from detect_cli.compare.results import (
    P95_MIN_CALLS,
    CompareSettings,
    Comparison,
    InputAgreement,
    Memory,
    ModelResult,
    SpeedStats,
    VideoRun,
)
from detect_cli.compare.tracking import CompareTracking, planned_files
from detect_cli.errors import BadOptionError, LabelsError, OutputError
from detect_cli.explain import EXPLAIN_JSONL, TORCH_ONLY, explain_images, picture_path
from detect_cli.geometry import clip_detections
from detect_cli.jobs.common import warn_about_options
from detect_cli.models import Detector
from detect_cli.pipeline import Frame, Progress
from detect_cli.results import Detection, ImageResult, Speed, busy
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import Stop, stop_on_signals
from detect_cli.sources import (
    ImageInput,
)
from detect_cli.writers import output_file

if TYPE_CHECKING:
    import numpy as np


# --- the comparison loop ------------------------------------------------------------------------


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


def spread(total: int, k: int) -> list[int]:
    """k indexes spread evenly over range(total), first and last included (all of them when total <= k)."""
    if total <= k:
        return list(range(total))
    if k == 1:
        return [0]
    return [round(i * (total - 1) / (k - 1)) for i in range(k)]


# --- the command: sources → frames → the loop → the report ------------------------------------------

INTERRUPT_NOTE = "stopping: finishing the frame in hand, then the report (Ctrl-C again to stop at once)"


def _outputs(out: Path, inputs: Inputs, video_suffix: str | None) -> Iterator[Path]:
    """The files a comparison writes (for the check that none of them is an input)."""
    yield from (out / name for name in REPORT_FILES)
    for item in inputs.images:
        yield out / SIDE_BY_SIDE / output_file(item.rel_path, ".jpg")
    for item in inputs.video_items:
        if video_suffix:
            yield out / SIDE_BY_SIDE / item.rel_path.with_name(item.rel_path.name + video_suffix)


@contextlib.contextmanager
def _file_list(out: Path, exist_ok: bool) -> Iterator[FileList]:
    """The comparison's list of the files it writes (compare.outputs.FileList), started empty; with
    --exist-ok, first the files an earlier comparison listed there are removed, so none of them is
    left beside this one's (a picture of an input no longer compared, detections of another model)."""
    if exist_ok:
        remove_listed(out)
    files = FileList(out)
    try:
        yield files
    finally:
        files.close()


def _explain(
    job: CompareJob,
    detectors: Sequence[Detector],
    images: Sequence[ImageInput],
    out: Path,
    stop: Stop,
    warn: Callable[[str], None] | None,
    files: FileList | None = None,
) -> list[Path]:
    """`--explain N`: the first N images explained (explain.py) into out/explain/, with the first RT-DETR
    and the first YOLO model compared; the pictures, for the report. Needs PyTorch models."""
    if not job.explain or stop.is_set():
        return []
    rtdetr = next((d for d in detectors if d.family == "rtdetr" and d.backend == "torch"), None)
    yolo = next((d for d in detectors if d.family == "yolo" and d.backend == "torch"), None)
    if rtdetr is None:
        if warn:
            warn(f"--explain needs an RT-DETR model on the torch backend (--backend torch); {TORCH_ONLY}")
        return []
    chosen = list(images[: job.explain])
    if files is not None:
        files.add(
            out / "explain" / EXPLAIN_JSONL, *(out / "explain" / picture_path(i.rel_path) for i in chosen)
        )
    run = explain_images(
        chosen,
        rtdetr,
        out / "explain",
        yolo,
        url_timeout=job.url_timeout,
        max_pixels=job.max_pixels,
        stop=stop,
        fresh=True,
    )
    return [p for p in run.pictures if p is not None]


def run_compare(
    job: CompareJob,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> CompareRun:
    """Check the sources, load the models, compare, and write the report into the run folder. `status`
    gets a line when the analysis at the end may take more than a few seconds."""
    if len(job.models) < 2:
        raise BadOptionError("compare needs at least two models")
    if job.out is not None and not job.exist_ok and holds_comparison(job.out):
        raise OutputError(
            f"{job.out} holds an earlier comparison's outputs (complete or stopped); pass --exist-ok "
            "to replace them, or choose another --out"
        )
    labelled = job.data is not None or job.coco is not None
    kind = source_kind(job.sources, job.recursive, warn)
    if kind == "videos" and labelled:
        option = "--data" if job.data is not None else "--coco"
        raise BadOptionError(
            f"{option} gives labels for images; a video source has none, so leave it out "
            "(speed and agreement are still measured)"
        )
    if kind == "images" and (job.vid_stride != 1 or job.max_frames is not None) and warn:
        warn("--vid-stride and --max-frames apply to video sources; they are ignored for images")
    check_tracking(job, kind)
    tracking: CompareTracking | None = None

    def reconnected(source: str, frame: int) -> None:  # a stream reopened: its tracks start anew
        if tracking is not None:
            tracking.restart_at(source, frame)

    stop = Stop()  # the signal handlers go up once the models are loaded; reading ahead watches it
    open_inputs = (
        functools.partial(video_inputs, reconnected=reconnected) if kind == "videos" else image_inputs
    )
    with open_inputs(job, stop) as inputs:
        if job.mot_gt is not None and inputs.videos != 1:
            raise BadOptionError("--mot-gt is the ground truth of one video: compare one video with it")
        labels = load_labels(inputs.images, job.data, job.coco) if labelled else None
        plans = [calibrated(p, inputs.images) for p in job.plans or [job.plan] * len(job.models)]
        detectors = [
            load_detector(ref, job.options, plan, job.classes, warn)
            for ref, plan in zip(job.models, plans, strict=True)
        ]
        warn_about_options(detectors, job.iou_given, warn)
        codec = None
        if kind == "videos" and job.save:
            codec = video.pick_codec()
        planned = planned_folder(job.out, "compare", job.exist_ok)
        if planned is not None:
            paths = _outputs(planned, inputs, codec.suffix if codec else None)
            if job.tracker:
                tracked = planned_files(planned, model_labels(detectors), inputs.video_items)
                paths = itertools.chain(paths, tracked)
            check_plan(
                planned, job.sources, [*inputs.images, *inputs.video_items], paths, record=REPORT_RECORD
            )
        with (
            run_folder(job.out, "compare", job.exist_ok, record=REPORT_RECORD) as out,
            _file_list(out, job.exist_ok) as files,
        ):
            files.add(*(out / name for name in REPORT_FILES))
            if codec is not None:
                files.add(*(p for p in _outputs(out, inputs, codec.suffix) if p.suffix == codec.suffix))
            pictures_at = None  # report.html shows a few pictures: over a video, spread, not its first frames
            if kind == "videos" and inputs.total:
                pictures_at = spread(inputs.total, HTML_PICTURES)
            panels = model_labels(detectors)
            outputs = CompareOutputs(
                out,
                panels,
                save=job.save,
                picture_indexes=pictures_at,
                video_fps=inputs.fps,
                codec=codec,
                files=files,
                random=[label for label, d in zip(panels, detectors, strict=True) if d.ref.untrained],
            )
            on_image: ImageCallback = outputs
            if job.tracker:
                files.add(*planned_files(out, panels, inputs.video_items))  # --exist-ok removes them
                tracking = CompareTracking(job.tracker, panels, out)
                on_image = _both(tracking, outputs)
            probe = None
            if job.memory:
                plan_of = {id(d): p for d, p in zip(detectors, plans, strict=True)}

                def probe(d: Detector, images: Sequence[np.ndarray]) -> Memory | None:
                    # A fresh process loads the model again: seconds per model, never in silence.
                    with busy(warn, f"measuring {d.name}'s peak memory, alone in a new process"):
                        return measure_memory(d, plan_of[id(d)], images, warn)

            fidelity = FidelityTally(len(detectors)) if job.plans else None
            if fidelity is not None:
                on_image = _both(on_image, lambda _frame, results: fidelity.add(results))

            with stop_on_signals(lambda: warn(INTERRUPT_NOTE) if warn else None, stop):
                try:
                    comparison = run_comparison(
                        detectors,
                        inputs.frames,
                        job.settings,
                        labels,
                        on_image,
                        progress,
                        inputs.total,
                        stop,
                        probe,
                        status,
                    )
                finally:
                    outputs.close()
                    if tracking:
                        tracking.close()
                if outputs.problems:  # pictures that could not be written: those inputs failed
                    comparison = replace(comparison, failed=(*comparison.failed, *outputs.problems))
                if kind == "videos":
                    comparison = replace(
                        comparison,
                        notes=(*comparison.notes, *inputs.notes),
                        video=VideoRun(
                            videos=inputs.videos,
                            vid_stride=job.vid_stride,
                            max_frames=job.max_frames,
                            side_by_side=tuple(p.relative_to(out).as_posix() for p in outputs.videos),
                            codec=str(codec) if codec else None,
                            playable=bool(codec and codec.name == "H.264" and codec.suffix == ".mp4"),
                        ),
                    )
                if tracking:
                    tracked = tracking.result(inputs.fps, job.mot_gt)
                    notes = (*comparison.notes, *tracked.notes)
                    comparison = replace(comparison, tracking=tracked, notes=notes)
                comparison = replace(comparison, environment=environment(job.command, job.options.device))
                if fidelity is not None:
                    comparison = replace(comparison, fidelity=fidelity.result(comparison.models))
                explained = (
                    _explain(job, detectors, inputs.images, out, stop, warn, files)
                    if kind == "images"
                    else []
                )
                files.add(*write_report(comparison, out, outputs.pictures, explained))
    return CompareRun(comparison, out, outputs.pictures, stop.signum)


def _both(first: ImageCallback, second: ImageCallback) -> ImageCallback:
    def both(frame: Frame, results: Sequence[ImageResult]) -> None:
        first(frame, results)
        second(frame, results)

    return both
