"""`detect video` (RT-DETR) and `detect yolo video` (YOLO11): one command body, two defaults."""

import typer

from detect_cli.cli.groups import InputArgs, ModelArgs, OutputArgs, StreamArgs, VideoArgs, grouped, job_fields
from detect_cli.cli.options import (
    ModelName,
    VideoSources,
    exit_code_for,
    handle_errors,
)
from detect_cli.cli.track_options import TrackArgs

DOC = (
    "Writes an annotated video per source and frames.jsonl (one line per processed frame) to the "
    "output folder; with --track, track ids, trails and tracks.csv. Exit code 0: all ok; 1: a video "
    "was truncated or unreadable (what was decoded is written); 2: nothing could run; 130: interrupted, "
    "143: stopped by SIGTERM (outputs finalized); 141: the reader of --json left (outputs finalized)."
)


def run_video_command(
    family: str,
    run_name: str,
    sources: list[str],
    model: str,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    stream: StreamArgs,
    run: VideoArgs,
    tracking: TrackArgs,
) -> None:
    """What `detect video` and `detect yolo video` do, given their options."""
    from detect_cli import ui
    from detect_cli.jobs import VideoJob, run_video
    from detect_cli.models import resolve

    ref = resolve(model, family)  # type: ignore[arg-type]
    job = VideoJob(
        **job_fields(sources, ref, run_name, settings, inputs, output, run.formats, run.batch),
        save_video=run.save,
        save_frames=run.save_frames,
        vid_stride=stream.vid_stride,
        max_frames=stream.max_frames,
        reconnects=stream.reconnects,
        tracker=tracking.config(),
    )
    progress = None if output.quiet else ui.RichProgress(ref.name, unit=" fps")
    echo = ui.StdoutLines() if run.json_out else None
    report, detector = run_video(job, progress=progress, echo=echo, warn=ui.messages(output.quiet))
    if not output.quiet:
        ui.print_video_summary(report, f"{detector.name} ({detector.backend}, {detector.precision})")
    code = exit_code_for(report.summary.failed, report.interrupted, report.signum)
    code = echo.exit_code(code) if echo else code
    if code:
        raise typer.Exit(code)


@handle_errors
@grouped
def video(
    ctx: typer.Context,
    sources: VideoSources,
    model: ModelName = "rtdetr-l",
    *,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    stream: StreamArgs,
    run: VideoArgs,
    tracking: TrackArgs,
) -> None:
    run_video_command("rtdetr", "video", sources, model, settings, inputs, output, stream, run, tracking)


@handle_errors
@grouped
def yolo_video(
    ctx: typer.Context,
    sources: VideoSources,
    model: ModelName = "yolo11n",
    *,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    stream: StreamArgs,
    run: VideoArgs,
    tracking: TrackArgs,
) -> None:
    run_video_command("yolo", "yolo-video", sources, model, settings, inputs, output, stream, run, tracking)


video.__doc__ = (
    f"Detect objects in videos, streams and webcams with RT-DETR (default model rtdetr-l).\n\n{DOC}"
)
yolo_video.__doc__ = (
    f"Detect objects in videos, streams and webcams with YOLO11 (default model yolo11n).\n\n{DOC}"
)
