"""`detect image` / `detect yolo image`: a batch of images, resumable, on this machine or on Ray."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from detect_cli import resume
from detect_cli.backends import calibrated, load_detector, weights_identity, weights_or_stand_in
from detect_cli.errors import BadOptionError
from detect_cli.executors import Placement, WorkSpec, execute, require_executor
from detect_cli.jobs.common import Job
from detect_cli.models import Detector, ModelRef, stand_in, warn_about_options
from detect_cli.pipeline import Progress, RunReport
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import stop_on_signals
from detect_cli.sources import ImageInput, discover_images, refuse_other_kind
from detect_cli.writers import RESULTS_JSONL, TABLES, output_paths, write_tables

THROUGHPUT_FROM = 8  # inputs from which a run is compiled for throughput (OpenVINO), not latency
INTERRUPT_NOTE = "stopping: finishing the images in flight (Ctrl-C again to stop at once)"


@dataclass(frozen=True)
class ImageJob(Job):
    """Everything `detect image` / `detect yolo image` needs."""

    save_images: bool = True
    resume: bool = False  # finish the run in `out`: skip inputs it recorded (unless changed since)
    retry_failed: bool = False  # with resume: also redo inputs recorded as failed
    executor: str = "local"  # "local" or "ray"
    ray_address: str | None = None  # None: $RAY_ADDRESS, else start a local Ray
    ray_workers: int | None = None  # None: one per GPU (CUDA) or per CPU of the cluster

    @property
    def resuming(self) -> bool:
        return self.resume or self.retry_failed

    @property
    def placement(self) -> Placement:
        return Placement(self.executor, self.ray_address, self.ray_workers)


def _image_outputs(out: Path, job: ImageJob, items: Sequence[ImageInput]) -> Iterator[Path]:
    yield out / RESULTS_JSONL
    yield from (out / name for name in TABLES.values())
    for item in items:
        yield from output_paths(out, item.rel_path, job.formats, job.save_images)


def _weights_named(digest: str, name: str, ref: ModelRef) -> str:
    """How a message names weights known by their digest: an official model's random stand-in
    (`--offline-fallback`) is said as such."""
    short = f"{name} (weights sha256 {digest[:12]})"
    if ref.official or ref.stand_in:
        with contextlib.suppress(Exception):  # no config to compare with: the digest says it
            config = stand_in(ref)
            if weights_identity(config) == digest:
                return f"{name} with random weights from {config.location} (--offline-fallback)"
    return short


def _check_same_weights(
    index: resume.DoneIndex, ref: ModelRef, digest: str | None, out: Path, warn: Callable[[str], None] | None
) -> None:
    """Refuse to resume a folder whose records name other weights than this run's: a model's name says
    nothing of which best.pt, or of trained versus random weights."""
    if digest is not None and (other := {d: n for d, n in index.weights.items() if d != digest}):
        made = "; ".join(_weights_named(d, n, ref) for d, n in sorted(other.items()))
        raise BadOptionError(
            f"{out} was made with {made}, not this run's {_weights_named(digest, ref.name, ref)} from "
            f"{ref.location}: resume it with the weights it was made with, or choose another --out"
        )
    if index.unweighed and warn:
        warn(
            f"{out}: {index.unweighed} record(s) do not say which weights made them (written by an "
            f"older detect): resumed on the model name {ref.name} alone"
        )


def run_images(
    job: ImageJob,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    detector: Detector | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[RunReport, Detector]:
    """Discover inputs, check the plan, plan a resume, load the model, run on the chosen executor,
    build the tables.

    `echo` receives each results.jsonl line as written. A first Ctrl-C (or SIGTERM) finishes the images
    in flight and returns a report with `interrupted` set.
    """
    if "mot" in job.formats:  # tracks need frames in order: a video's
        raise BadOptionError("-f mot writes tracks of a video: use detect video --track -f mot")
    require_executor(job.executor)  # a missing ray package is said before anything runs
    refuse_other_kind(job.sources, "image", job.run_name)
    if job.resuming and job.out is None:
        raise BadOptionError("--resume needs --out: the folder of the run to finish")
    # Before loading: bad sources, and outputs that would land on inputs, fail fast.
    items = discover_images(job.sources, job.recursive, warn, exclude=[job.out] if job.out else ())
    planned = planned_folder(job.out, job.run_name, job.exist_ok or job.resuming)
    if planned is not None:
        check_plan(planned, job.sources, items, _image_outputs(planned, job, items))
    with contextlib.ExitStack() as held:
        todo = resume.ResumePlan(items)
        model = job.model
        if job.resuming:  # locked first: the record must not change between reading and finishing it
            out = held.enter_context(run_folder(job.out, job.run_name, exist_ok=True))
            index = resume.DoneIndex.load(out / RESULTS_JSONL)
            if other := index.models - {job.model.name}:
                raise BadOptionError(
                    f"{job.out} holds results of {', '.join(sorted(other))}, not {job.model.name}: "
                    "resume it with the same --model, or choose another --out"
                )
            if detector is None:  # what this run will load, known before loading (or exporting) it
                model = weights_or_stand_in(job.model, job.plan, warn or (lambda _: None))
                identity = weights_identity(model)
            else:
                model, identity = detector.ref, detector.weights_sha256 or weights_identity(detector.ref)
            _check_same_weights(index, model, identity, job.out or out, warn)
            todo = resume.plan(items, index, job.retry_failed)
            if index.bad_lines and warn:
                record = out / RESULTS_JSONL
                warn(
                    f"{record}: {len(index.bad_lines)} line(s) are not records (first: line "
                    f"{index.bad_lines[0][0]}); they are moved to {resume.rejected_path(record)}"
                )
        plan = calibrated(job.plan, items)  # --precision int8: on the run's first pictures by default
        if len(todo.todo) >= THROUGHPUT_FROM and job.executor == "local":
            plan = replace(plan, mode="throughput")  # many pictures: images/s counts, not each one's latency
        detector = detector or load_detector(model, job.options, plan, job.classes, warn)
        warn_about_options([detector], job.iou_given, warn)
        if not job.resuming:  # only once there is something to write
            out = held.enter_context(run_folder(job.out, job.run_name, job.exist_ok))
        else:
            resume.remove_partials(out)
        with stop_on_signals(lambda: warn(INTERRUPT_NOTE) if warn else None) as stop:
            spec = WorkSpec(
                out,
                job.formats,
                job.save_images,
                job.batch,
                job.url_timeout,
                job.max_pixels,
                job.plan.requested,
                job.plan.precision,
            )
            report = execute(spec, job.placement, todo.todo, detector, progress, echo, stop)
            report.skipped, report.skipped_failed = todo.skipped, todo.skipped_failed
            if todo.needs_compaction:
                resume.compact(out / RESULTS_JSONL)
            write_tables(out, job.formats, detector.names)
    return report, detector
