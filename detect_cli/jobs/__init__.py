"""What each command runs around the run loop (pipeline.run): discovery, the checks on the run folder,
the model, the loop, and what is written at the end. `image` and `video` are here; `detect compare`'s
job is `compare.run` (`run_compare`), around its own loop (`compare.loop`)."""

from detect_cli.jobs.common import Job
from detect_cli.jobs.image import ImageJob, run_images
from detect_cli.jobs.video import VideoJob, run_video

__all__ = ["ImageJob", "Job", "VideoJob", "run_images", "run_video"]
