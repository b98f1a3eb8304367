"""`detect image` (RT-DETR) and `detect yolo image` (YOLO11): one command body, two defaults."""

import typer

from detect_cli.cli.groups import ImageArgs, InputArgs, ModelArgs, OutputArgs, grouped, job_fields
from detect_cli.cli.options import (
    ModelName,
    Sources,
    exit_code_for,
    handle_errors,
    resume_command,
)

DOC = (
    "Writes results.jsonl (one line per input) and annotated images to the output folder. "
    "Exit code 0: all inputs ok; 1: some failed (the rest were written); 2: nothing could run; "
    "130: interrupted (--resume finishes it); 143: stopped by SIGTERM; 141: the reader of --json left."
)


def run_image_command(
    ctx: typer.Context,
    family: str,
    run_name: str,
    sources: list[str],
    model: str,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    run: ImageArgs,
) -> None:
    """What `detect image` and `detect yolo image` do, given their options."""
    from detect_cli import ui
    from detect_cli.jobs import ImageJob, run_images
    from detect_cli.models import resolve

    ref = resolve(model, family)  # type: ignore[arg-type]
    executor = "ray" if run.on_ray else "local"
    job = ImageJob(
        **job_fields(sources, ref, run_name, settings, inputs, output, run.formats, run.batch, executor),
        save_images=run.save,
        resume=run.resume,
        retry_failed=run.retry_failed,
        executor=executor,
        ray_address=run.ray_address,
        ray_workers=run.ray_workers,
    )
    progress = None if output.quiet else ui.RichProgress(ref.name)
    echo = ui.StdoutLines() if run.json_out else None
    report, detector = run_images(job, progress=progress, echo=echo, warn=ui.messages(output.quiet))
    if not output.quiet:
        # What the records say ran: on Ray, the workers plan the backend, not this process.
        ran = report.summary.ran_on or f"{detector.backend}, {detector.precision}"
        ui.print_summary(report, f"{detector.name} ({ran})")
    if report.interrupted:  # said even with --quiet: it is what to do next
        ui.err_console.print(f"To resume: {resume_command(ctx, report.out)}", markup=False)
    code = exit_code_for(report.summary.failed + report.skipped_failed, report.interrupted, report.signum)
    code = echo.exit_code(code) if echo else code
    if code:
        raise typer.Exit(code)


@handle_errors
@grouped
def image(
    ctx: typer.Context,
    sources: Sources,
    model: ModelName = "rtdetr-l",
    *,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    run: ImageArgs,
) -> None:
    run_image_command(ctx, "rtdetr", "image", sources, model, settings, inputs, output, run)


@handle_errors
@grouped
def yolo_image(
    ctx: typer.Context,
    sources: Sources,
    model: ModelName = "yolo11n",
    *,
    settings: ModelArgs,
    inputs: InputArgs,
    output: OutputArgs,
    run: ImageArgs,
) -> None:
    run_image_command(ctx, "yolo", "yolo-image", sources, model, settings, inputs, output, run)


image.__doc__ = f"Detect objects in images with RT-DETR (default model rtdetr-l).\n\n{DOC}"
yolo_image.__doc__ = f"Detect objects in images with YOLO11 (default model yolo11n).\n\n{DOC}"
