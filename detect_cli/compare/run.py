"""`detect compare` end to end (`run_compare`): SOURCE arguments → images or videos → one stream of
frames → the models (`loop.run_comparison`) → detections, side-by-side pictures or videos, and the
report (report.py).

A run compares images or videos, never both: what one input is (an image, or a video frame) decides
what the numbers mean, and labels apply to images only. Videos are opened before any model loads (a
bad source fails fast), decoded once in a background thread (`video.video_frames`), and every model
gets the same decoded frame.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from detect_cli import video
from detect_cli.backends import Plan, calibrated, load_detector
from detect_cli.compare.fidelity import FidelityTally
from detect_cli.compare.inputs import Inputs, SourceKind, check_sources, open_inputs
from detect_cli.compare.job import CompareJob, CompareRun
from detect_cli.compare.labels import load_labels
from detect_cli.compare.loop import ImageCallback, MemoryProbe, run_comparison
from detect_cli.compare.machine import environment, measure_memory
from detect_cli.compare.model_facts import model_labels
from detect_cli.compare.outputs import (
    SIDE_BY_SIDE,
    CompareOutputs,
    FileList,
    holds_comparison,
    remove_listed,
)
from detect_cli.compare.report import HTML_PICTURES, REPORT_FILES, REPORT_RECORD, draw_plots, write_report
from detect_cli.compare.results import Comparison, Memory, VideoRun
from detect_cli.compare.tracking import CompareTracking, planned_files
from detect_cli.compare.verdict import possessive
from detect_cli.errors import BadOptionError, OutputError
from detect_cli.explain import EXPLAIN_JSONL, TORCH_ONLY, explain_images, picture_path
from detect_cli.models import Detector, warn_about_options
from detect_cli.pipeline import Frame, Progress
from detect_cli.results import ImageResult, busy
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import Stop, stop_on_signals
from detect_cli.sources import ImageInput, VideoInput, output_file
from detect_cli.writers import Codec

if TYPE_CHECKING:
    import numpy as np


def interrupt_note(stop: Stop) -> str:
    """What a first Ctrl-C does in the phase the run is in (`Stop.finishing`)."""
    return f"stopping: finishing {stop.finishing}, then the report (Ctrl-C again to stop at once)"


def run_compare(
    job: CompareJob,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> CompareRun:
    """Check the sources, load the models, compare, and write the report into the run folder. `status`
    gets a line when the analysis at the end may take more than a few seconds."""
    _check_job(job)
    kind = check_sources(job, warn)
    tracking: CompareTracking | None = None

    def reconnected(source: str, frame: int) -> None:  # a stream reopened: its tracks start anew
        if tracking is not None:
            tracking.restart_at(source, frame)

    stop = Stop()  # the signal handlers go up once the models are loaded; reading ahead watches it
    with open_inputs(job, kind, stop, reconnected) as inputs:
        labels = load_labels(inputs.images, job.data, job.coco) if job.labelled else None
        detectors, plans = _load_models(job, [*inputs.images, *inputs.video_items], warn)
        codec = video.pick_codec() if kind == "videos" and job.save else None
        _check_outputs(job, inputs, detectors, codec)
        with (
            run_folder(job.out, "compare", job.exist_ok, record=REPORT_RECORD) as out,
            _file_list(out, job.exist_ok) as files,
        ):
            panels = model_labels(detectors)
            outputs = _open_outputs(job, kind, inputs, detectors, panels, codec, out, files)
            if job.tracker:
                files.add(*planned_files(out, panels, inputs.video_items))  # --exist-ok removes them
                tracking = CompareTracking(job.tracker, panels, out)
            fidelity = FidelityTally(len(detectors)) if job.plans else None
            on_image = _on_image(outputs, tracking, fidelity)
            probe = _memory_probe(detectors, plans, warn) if job.memory else None
            stop.finishing = "the image in hand" if kind == "images" else "the frame in hand"
            with stop_on_signals(lambda: warn(interrupt_note(stop)) if warn else None, stop):
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
                comparison = _completed(comparison, job, kind, inputs, outputs, codec, tracking, fidelity)
                if job.explain and kind == "images":
                    stop.finishing = "the picture being explained, leaving out the others"
                explained = (
                    _explain(job, detectors, inputs.images, out, stop, warn, files)
                    if kind == "images"
                    else []
                )
                stop.finishing = "the plot in hand, leaving out the others"
                plots, undrawn = _plots(comparison, stop)
                comparison = _stopped_after(comparison, stop, explained, job.explain, undrawn)
                write_report(comparison, out, outputs.pictures, explained, listed=files.add, plots=plots)
    return CompareRun(comparison, out, outputs.pictures, stop.signum)


def _check_job(job: CompareJob) -> None:
    """Refused before any source is read: fewer than two models, or an --out that holds an earlier
    comparison's outputs without --exist-ok."""
    if len(job.models) < 2:
        raise BadOptionError("compare needs at least two models")
    if job.out is not None and not job.exist_ok and holds_comparison(job.out):
        raise OutputError(
            f"{job.out} holds an earlier comparison's outputs (complete or stopped); pass --exist-ok "
            "to replace them, or choose another --out"
        )


def _load_models(
    job: CompareJob, inputs: Sequence[ImageInput | VideoInput], warn: Callable[[str], None] | None
) -> tuple[list[Detector], list[Plan]]:
    """Every model loaded as its plan says (one plan for all, or one per `--backends` entry), an INT8
    plan without --calibration calibrated on the run's own pictures or video frames; options a model
    ignores are warned about. The detectors and their plans."""
    plans = [calibrated(p, inputs) for p in job.plans or [job.plan] * len(job.models)]
    detectors = [
        load_detector(ref, job.options, plan, job.classes, warn)
        for ref, plan in zip(job.models, plans, strict=True)
    ]
    warn_about_options(detectors, job.iou_given, warn)
    return detectors, plans


def _check_outputs(
    job: CompareJob, inputs: Inputs, detectors: Sequence[Detector], codec: Codec | None
) -> None:
    """Before the run folder is made: none of the files the comparison will write is one of its inputs
    or a stranger's file (rundir.check_plan)."""
    planned = planned_folder(job.out, "compare", job.exist_ok)
    if planned is None:
        return
    paths = _outputs(planned, inputs, codec.suffix if codec else None)
    if job.tracker:
        tracked = planned_files(planned, model_labels(detectors), inputs.video_items)
        paths = itertools.chain(paths, tracked)
    check_plan(planned, job.sources, [*inputs.images, *inputs.video_items], paths, record=REPORT_RECORD)


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


def _open_outputs(
    job: CompareJob,
    kind: SourceKind,
    inputs: Inputs,
    detectors: Sequence[Detector],
    panels: list[str],
    codec: Codec | None,
    out: Path,
    files: FileList,
) -> CompareOutputs:
    """What is written as the run goes (side-by-side pictures or video, detections), the report's files
    and the side-by-side videos listed first."""
    files.add(*(out / name for name in REPORT_FILES))
    if codec is not None:
        files.add(*(p for p in _outputs(out, inputs, codec.suffix) if p.suffix == codec.suffix))
    pictures_at = None  # report.html shows a few pictures: over a video, spread, not its first frames
    if kind == "videos" and inputs.total:
        pictures_at = spread(inputs.total, HTML_PICTURES)
    return CompareOutputs(
        out,
        panels,
        save=job.save,
        picture_indexes=pictures_at,
        video_fps=inputs.fps,
        codec=codec,
        files=files,
        random=[label for label, d in zip(panels, detectors, strict=True) if d.ref.untrained],
    )


def spread(total: int, k: int) -> list[int]:
    """k indexes spread evenly over range(total), first and last included (all of them when total <= k)."""
    if total <= k:
        return list(range(total))
    if k == 1:
        return [0]
    return [round(i * (total - 1) / (k - 1)) for i in range(k)]


def _on_image(
    outputs: CompareOutputs, tracking: CompareTracking | None, fidelity: FidelityTally | None
) -> ImageCallback:
    """What each compared frame and its results are given to: the trackers (--track), the outputs (the
    tracked results, so the side-by-side pictures show the ids), the fidelity tally (--backends), in
    that order."""
    on_image: ImageCallback = outputs
    if tracking is not None:
        on_image = _tracked(tracking, outputs)
    if fidelity is not None:
        on_image = _both(on_image, lambda _frame, results: fidelity.add(results))
    return on_image


def _tracked(tracking: CompareTracking, then: ImageCallback) -> ImageCallback:
    """`then`, given each model's result with its boxes' track ids."""

    def tracked(frame: Frame, results: Sequence[ImageResult]) -> None:
        then(frame, tracking.track(frame, results))

    return tracked


def _both(first: ImageCallback, second: ImageCallback) -> ImageCallback:
    def both(frame: Frame, results: Sequence[ImageResult]) -> None:
        first(frame, results)
        second(frame, results)

    return both


def _memory_probe(
    detectors: Sequence[Detector], plans: Sequence[Plan], warn: Callable[[str], None] | None
) -> MemoryProbe:
    """Each model's peak memory, measured alone in a new process that loads it by its own plan."""
    plan_of = {id(d): p for d, p in zip(detectors, plans, strict=True)}

    def probe(d: Detector, images: Sequence[np.ndarray]) -> Memory | None:
        # A fresh process loads the model again: seconds per model, never in silence.
        with busy(warn, f"measuring {possessive(d.name)} peak memory, alone in a new process"):
            return measure_memory(d, plan_of[id(d)], images, warn)

    return probe


def _completed(
    comparison: Comparison,
    job: CompareJob,
    kind: SourceKind,
    inputs: Inputs,
    outputs: CompareOutputs,
    codec: Codec | None,
    tracking: CompareTracking | None,
    fidelity: FidelityTally | None,
) -> Comparison:
    """The loop's comparison with what the run around it adds: the inputs whose pictures could not be
    written (failed), the video run, the tracks, the machine it ran on, the fidelity matrix."""
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
                side_by_side=tuple(p.relative_to(outputs.out).as_posix() for p in outputs.videos),
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
    return comparison


def _plots(c: Comparison, stop: Stop) -> tuple[dict[str, bytes], list[str]]:
    """The report's plots, and those a stop after the last input left undrawn: a first Ctrl-C lets the
    plot in hand finish, a second one leaves every plot out (the report is still written)."""
    try:
        return draw_plots(c, None if c.interrupted else stop)
    except KeyboardInterrupt:
        return {}, ["every plot"]


def _stopped_after(
    c: Comparison, stop: Stop, explained: Sequence[Path], asked: int, undrawn: Sequence[str]
) -> Comparison:
    """The comparison marked interrupted when a stop came after its last input (while measuring
    memory, analysing, explaining or drawing), with what that left out: the report and the exit code
    then say the same."""
    if c.interrupted or not stop.is_set():
        return c
    cut = list(c.cut_short)
    if asked and len(explained) < asked:
        cut.append("part of --explain (explain/ holds the pictures done)")
    if undrawn:
        cut.append("the plots " + ", ".join(undrawn) if undrawn != ["every plot"] else "every plot")
    return replace(c, interrupted=True, cut_short=tuple(cut))


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
