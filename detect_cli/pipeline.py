"""The run loop: read → detect → write, one stream of `Frame`s for images and video frames alike.

Reading runs ahead in worker threads (bounded look-ahead, order kept) so decoding and downloads overlap
inference; results go to the sinks as they come, so memory stays flat however many inputs there are.
The loop watches the run's `Stop` flag (signals.py): a first Ctrl-C or SIGTERM ends it after the batch in
hand, with every output finalized. What each command runs around this loop is in `jobs/`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from detect_cli.errors import InputError
from detect_cli.models import Detector
from detect_cli.results import ImageResult, RunSummary
from detect_cli.signals import Interrupted
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    FileStamp,
    ImageInput,
    decode_image,
    fetch_url,
    input_path,
    read_file,
)
from detect_cli.threads import prefetch
from detect_cli.writers import Sink, close_all

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One unit of work: a decoded image or video frame, or the error that stopped reading it.

    `path` and `stamp` identify a file input for resume (None for URLs and video frames)."""

    source: str
    rel_path: PurePosixPath
    image: np.ndarray | None
    error: str | None = None
    frame: int | None = None
    time_s: float | None = None
    path: str | None = None
    stamp: FileStamp | None = None


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...
    def advance(self, result: ImageResult) -> None: ...
    def stop(self) -> None: ...


def read_frame(
    item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Frame:
    """Read and decode one input; a failure (vanished file, bad bytes, HTTP error) becomes its `error`.
    The stamp is that of the bytes read, so a record always describes the file it was made from."""
    path, stamp = input_path(item), None
    try:
        if item.error:
            raise InputError(item.error)
        if item.url:
            data = fetch_url(item.url, url_timeout)
        else:
            assert item.path is not None
            data, stamp = read_file(item.path)
        return Frame(item.source, item.rel_path, decode_image(data, max_pixels), path=path, stamp=stamp)
    except InputError as e:
        return Frame(item.source, item.rel_path, None, error=str(e), path=path, stamp=stamp)
    except MemoryError:  # a picture within the pixel budget that still does not fit: this input's failure
        return Frame(
            item.source, item.rel_path, None, error="out of memory decoding it", path=path, stamp=stamp
        )


def image_frames(
    items: Sequence[ImageInput],
    url_timeout: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stop: threading.Event | None = None,
    depth: int = 4,
) -> Iterator[Frame]:
    """The inputs read and decoded up to `depth` ahead, in threads; ends early when `stop` is set."""
    return prefetch(items, lambda item: read_frame(item, url_timeout, max_pixels), depth=depth, stop=stop)


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def detect_batch(detector: Detector, batch: Sequence[Frame]) -> list[ImageResult]:
    """Results for one batch, in order; unreadable frames and a failing model call become error records."""
    readable = [f for f in batch if f.image is not None]
    outputs: dict[int, tuple] = {}
    failure: str | None = None
    if readable:
        try:
            for f, out in zip(readable, detector.predict([f.image for f in readable]), strict=True):
                outputs[id(f)] = out
        except Exception as e:  # one bad batch must not end the run; it is recorded against its inputs
            failure = f"inference failed: {type(e).__name__}: {e}"
    results = []
    ran = {"backend": detector.backend, "precision": detector.precision}
    weights = detector.weights_sha256  # also on failure records: they belong to the run of these weights
    for f in batch:
        h, w = f.image.shape[:2] if f.image is not None else (None, None)
        ident = {
            "frame": f.frame,
            "time_s": f.time_s,
            "path": f.path,
            "size": f.stamp.size if f.stamp else None,
            "mtime_ns": f.stamp.mtime_ns if f.stamp else None,
        }
        if id(f) in outputs:
            dets, speed = outputs[id(f)]
            results.append(
                ImageResult(
                    f.source, detector.name, w, h, speed, dets, None, **ident, **ran, weights_sha256=weights
                )
            )
        else:
            results.append(
                ImageResult(
                    f.source, detector.name, w, h, error=f.error or failure, **ident, weights_sha256=weights
                )
            )
    return results


@dataclass
class RunReport:
    """What a finished (or interrupted) run did, for the summary."""

    out: Path
    summary: RunSummary = field(default_factory=RunSummary)
    seconds: float = 0.0
    interrupted: bool = False
    first_result_s: float | None = None  # the first result includes the model's one-off setup
    notes: list[str] = field(default_factory=list)  # things the user should hear that are not failures
    outputs: list[Path] = field(default_factory=list)  # files worth naming in the summary (videos)
    codec: str | None = None  # the video codec written with, when videos were written
    skipped: int = 0  # already recorded by an earlier run (--resume)
    skipped_failed: int = 0  # of those, recorded as failed (--retry-failed redoes them)
    signum: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM), when one did


def run(
    frames: Iterable[Frame],
    detector: Detector,
    sinks: Sequence[Sink],
    out: Path,
    progress: Progress | None = None,
    total: int | None = None,
    batch: int = 1,
    stop: threading.Event | None = None,
) -> RunReport:
    """Drive frames through the detector into the sinks, each result to every sink in order.

    When `stop` is set the loop ends after the batch in hand is written (the frames stop coming, even
    when a reader is stuck); a KeyboardInterrupt ends it after the result in hand. Either way the sinks
    are closed (files finalized) and the report comes back with `interrupted` set. Inputs whose outputs
    could not be written are counted as the failures their records say they are.
    """
    report = RunReport(out)
    start = time.perf_counter()
    if progress:
        progress.start(total)
    frames = iter(frames)
    try:
        for chunk in _batches(frames, batch):
            for frame, result in zip(chunk, detect_batch(detector, chunk), strict=True):
                for sink in sinks:
                    sink.write(result, frame.rel_path, frame.image)
                report.summary.add(result)
                if report.first_result_s is None:
                    report.first_result_s = time.perf_counter() - start
                if progress:
                    progress.advance(result)
            if stop is not None and stop.is_set():
                break
    except KeyboardInterrupt as e:
        report.interrupted = True
        report.signum = e.signum if isinstance(e, Interrupted) else None
    finally:
        close = getattr(frames, "close", None)
        if close:  # stop reading ahead now, not when the generator is collected
            close()
        report.seconds = time.perf_counter() - start
        if progress:
            progress.stop()
        close_all(sinks)
    if stop is not None and stop.is_set():
        report.interrupted = True
        report.signum = report.signum or getattr(stop, "signum", None)
    for sink in sinks:
        for inferred, recorded in sink.failures():
            report.summary.retract(inferred)
            report.summary.add(recorded)
    return report
