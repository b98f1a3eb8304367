"""`detect video` / `detect yolo video`: videos, streams and webcams, frame by frame through the run loop,
with an annotated video per source."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from detect_cli import video
from detect_cli.backends import calibrated, load_detector
from detect_cli.errors import BadOptionError
from detect_cli.jobs.common import Job
from detect_cli.models import Detector, warn_about_options, weights_caption
from detect_cli.pipeline import Progress, RunReport, run
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import stop_on_signals
from detect_cli.sources import VideoInput, discover_videos, refuse_other_kind
from detect_cli.threads import ThreadedSink
from detect_cli.tracking import RunTracker, TrackerConfig
from detect_cli.tracks import MOT_FOLDER, TRACKS_CSV, MotWriter, TrackBook, TrackedVideoWriter, TrackingSink
from detect_cli.writers import (
    FRAMES_JSONL,
    TABLES,
    AnnotatedImageWriter,
    AnnotatedVideoWriter,
    Sink,
    open_sinks,
    write_tables,
)

VIDEO_INTERRUPT_NOTE = "stopping: finishing the frame in hand and the video (Ctrl-C again to stop at once)"


@dataclass(frozen=True)
class VideoJob(Job):
    """Everything `detect video` / `detect yolo video` needs."""

    run_name: str = "video"
    save_video: bool = True
    save_frames: bool = False
    vid_stride: int = 1
    max_frames: int | None = None
    reconnects: int = 3
    tracker: TrackerConfig | None = None  # --track: identities across frames


def _video_outputs(
    out: Path, job: VideoJob, items: Sequence[VideoInput], suffix: str | None
) -> Iterator[Path]:
    yield out / FRAMES_JSONL
    yield from (out / name for name in TABLES.values())
    if job.tracker:
        yield out / TRACKS_CSV
    for item in items:
        if suffix:
            yield out / item.rel_path.with_name(item.rel_path.name + suffix)
        if job.save_frames:
            yield out / item.rel_path
        if "mot" in job.formats:
            yield MotWriter.target(out / MOT_FOLDER, item.rel_path)


def run_video(
    job: VideoJob,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    detector: Detector | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[RunReport, Detector]:
    """Open the videos, load the model, and run their frames through `run`; frames.jsonl gets one
    line per processed frame (`echo` receives each as written)."""
    refuse_other_kind(job.sources, "video", job.run_name)  # a picture: `detect image`
    if "mot" in job.formats and job.tracker is None:
        raise BadOptionError("-f mot writes tracks: add --track")
    tracker = RunTracker(job.tracker) if job.tracker else None  # no lap: said before anything runs
    items = discover_videos(job.sources, job.recursive, exclude=[job.out] if job.out else ())
    codec = video.pick_codec() if job.save_video else None
    planned = planned_folder(job.out, job.run_name, job.exist_ok)
    if planned is not None:
        outputs = _video_outputs(planned, job, items, codec.suffix if codec else None)
        check_plan(planned, job.sources, items, outputs, record=FRAMES_JSONL)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="detect-video-") as workdir:  # downloaded URLs live here
        # Before loading: a source that cannot be read fails fast.
        found = video.open_for_run(
            items,
            Path(workdir),
            job.vid_stride,
            job.max_frames,
            job.url_timeout,
            job.max_pixels,
            job.reconnects,
        )
        if detector is None:  # --precision int8 without --calibration: on frames of the run's own videos
            plan = calibrated(job.plan, [v.item for v in found.opened])
            detector = load_detector(job.model, job.options, plan, job.classes, warn)
        warn_about_options([detector], job.iou_given, warn)
        with run_folder(job.out, job.run_name, job.exist_ok, record=FRAMES_JSONL) as out:
            # Frames' own files, then their record, in one writer thread; the video in another, so
            # drawing and encoding overlap inference.
            group = open_sinks(out, job.formats, detector.names, False, echo, record=FRAMES_JSONL)
            caption = weights_caption(detector.ref)  # random weights say so on every frame
            if job.save_frames:
                group.outputs.append(AnnotatedImageWriter(out, caption))
            sinks: list[Sink] = [ThreadedSink(group)]
            video_writer = None
            if codec:
                writer_class = TrackedVideoWriter if tracker else AnnotatedVideoWriter
                video_writer = writer_class(out, found.fps, codec, caption)
                sinks.insert(0, ThreadedSink(video_writer))
            tracking = None
            if tracker:
                sinks, tracking = _tracked(sinks, tracker, out, job.formats)
            # A first Ctrl-C (or SIGTERM) finishes the frame in hand, then the video is finalized.
            with stop_on_signals(lambda: warn(VIDEO_INTERRUPT_NOTE) if warn else None) as stop:
                frames = found.frames(notes.append, stop, tracker.restart_at if tracker else None)
                report = run(
                    frames, detector, sinks, out, progress, total=found.total, batch=job.batch, stop=stop
                )
                write_tables(out, job.formats, detector.names, FRAMES_JSONL, tracked=tracker is not None)
    report.notes.extend(notes)
    report.codec = str(codec) if codec else None
    if tracking:
        _report_tracks(report, tracking, job.tracker)
    if video_writer:
        report.outputs.extend(video_writer.written)
        for source, problem in video_writer.problems:
            report.summary.failed += 1
            report.summary.failures.append((source, problem))
    return report, detector


def _tracked(
    sinks: list[Sink], tracker: RunTracker, out: Path, formats: Sequence[str]
) -> tuple[list[Sink], TrackingSink]:
    """The run's sinks behind one that gives every frame its track ids first; MOT files with `-f mot`,
    tracks.csv at the end. The tracker runs in a thread of its own (frames stay in order), so it
    overlaps inference instead of adding to each frame's time."""
    inner = list(sinks)
    if "mot" in formats:
        inner.append(MotWriter(out / MOT_FOLDER))
    tracking = TrackingSink(tracker, inner, TrackBook(), out / TRACKS_CSV)
    return [ThreadedSink(tracking)], tracking


def _report_tracks(report: RunReport, tracking: TrackingSink, config: TrackerConfig | None) -> None:
    """The tracks in the summary's notes: how many, and the files that list them."""
    name = config.kind if config else "tracker"
    tracks = len(tracking.book.tracks)
    files = [*tracking.written]
    for sink in tracking.inner:
        if isinstance(sink, MotWriter):
            files.extend(sink.written)
    where = f": {', '.join(map(str, files))}" if files else ""
    report.notes.append(f"{tracks} track{'s' if tracks != 1 else ''} ({name}){where}")
