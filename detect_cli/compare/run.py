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
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from detect_cli import video
from detect_cli.backends import calibrated, load_detector
from detect_cli.compare.fidelity import FidelityTally
from detect_cli.compare.inputs import Inputs, check_tracking, image_inputs, source_kind, video_inputs
from detect_cli.compare.job import CompareJob, CompareRun
from detect_cli.compare.labels import load_labels
from detect_cli.compare.loop import ImageCallback, run_comparison
from detect_cli.compare.machine import environment, measure_memory
from detect_cli.compare.model_facts import model_labels
from detect_cli.compare.outputs import (
    SIDE_BY_SIDE,
    CompareOutputs,
    FileList,
    holds_comparison,
    remove_listed,
)
from detect_cli.compare.report import HTML_PICTURES, REPORT_FILES, REPORT_RECORD, write_report
from detect_cli.compare.results import Memory, VideoRun
from detect_cli.compare.tracking import CompareTracking, planned_files
from detect_cli.errors import BadOptionError, OutputError
from detect_cli.explain import EXPLAIN_JSONL, TORCH_ONLY, explain_images, picture_path
from detect_cli.jobs.common import warn_about_options
from detect_cli.models import Detector
from detect_cli.pipeline import Frame, Progress
from detect_cli.results import ImageResult, busy
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import Stop, stop_on_signals
from detect_cli.sources import ImageInput
from detect_cli.writers import output_file

if TYPE_CHECKING:
    import numpy as np


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
