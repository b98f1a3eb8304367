"""Where a batch of images runs: in this process (`local`), or on a Ray cluster (`ray`).

Both end the same: the per-input files (annotated images, labels) written under the run folder, and one
results.jsonl record per input, appended by this process after that input's files are in place.

On Ray, each worker is an actor that loads the model once and runs shards of inputs through the same
run loop as a local run (pipeline.run), writing the per-input files itself; the records come back to
this process, the only writer of results.jsonl. Workers read inputs and write outputs by path, so on a
cluster both must be on storage every node sees at the same path. Ray is the scheduler: shards are
handed to whichever worker is free, a few at a time, so memory stays flat here too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from detect_cli import backends, errors
from detect_cli.errors import BadOptionError, DetectError
from detect_cli.models import Detector, ModelRef, PredictOptions, select_device, weights_caption
from detect_cli.pipeline import Progress, RunReport, image_frames, run
from detect_cli.results import ImageResult
from detect_cli.sources import ImageInput, current_stamp, input_path
from detect_cli.threads import ThreadedSink
from detect_cli.writers import RESULTS_JSONL, JsonlWriter, Sink, SinkGroup, open_sinks, output_sinks

EXECUTORS = ("local", "ray")
SHARD_PER_WORKER = 2  # shards queued on each worker, so it never waits for the next one
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # results are small; images are read by the workers themselves


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadOptionError(
            "--executor ray needs the ray package: pip install 'detect-cli[ray]' (on every node)"
        ) from None
    return ray


def require_executor(name: str) -> None:
    if name not in EXECUTORS:
        raise BadOptionError(f"unknown executor '{name}': use {' or '.join(EXECUTORS)}")
    if name == "ray":
        require_ray()


@dataclass(frozen=True)
class WorkSpec:
    """What running a batch of images needs, as plain picklable values (no job, no model)."""

    out: Path
    formats: tuple[str, ...] = ("jsonl",)
    save_images: bool = True
    batch: int = 1
    url_timeout: float = 15.0
    max_pixels: int = 100_000_000
    backend: str = "torch"  # as asked (`auto` too): a Ray worker plans it on its own machine
    precision: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a batch runs: this process, or a Ray cluster (its address, and how many workers)."""

    executor: str = "local"
    ray_address: str | None = None  # None: $RAY_ADDRESS, else start a local Ray
    ray_workers: int | None = None  # None: one per GPU (CUDA) or per CPU of the cluster


def execute(
    spec: WorkSpec,
    placement: Placement,
    items: Sequence[ImageInput],
    detector: Detector,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Run `items` where `placement` says; results.jsonl gets one record per input processed."""
    if placement.executor == "ray" and items:
        return run_ray(spec, placement, items, detector, progress, echo, stop)
    return run_local(spec, items, detector, progress, echo, stop)


def run_local(
    spec: WorkSpec,
    items: Sequence[ImageInput],
    detector: Detector,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    # Drawing, encoding and writing happen behind the run loop, in order, so the model is never idle.
    caption = weights_caption(detector.ref)  # random weights say so on every picture
    sinks = [
        ThreadedSink(
            open_sinks(spec.out, spec.formats, detector.names, spec.save_images, echo, caption=caption)
        )
    ]
    # A runtime with several requests in flight (OpenVINO THROUGHPUT) gets twice as many pictures per
    # call, so each request has a next picture while the last results are written.
    batch = max(spec.batch, 2 * detector.in_flight if detector.in_flight > 1 else 1)
    frames = image_frames(items, spec.url_timeout, spec.max_pixels, stop, depth=max(4, 2 * batch))
    return run(frames, detector, sinks, spec.out, progress, total=len(items), batch=batch, stop=stop)


# --- Ray ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to load the model and write outputs; plain values, sent once per worker."""

    ref: ModelRef
    options: PredictOptions  # classes already resolved; `device` as requested (resolved on the worker)
    work: WorkSpec  # `out` absolute: a worker's working folder is not this one


class _Collect(Sink):
    """Keeps a shard's results to send back (a shard is small)."""

    def __init__(self) -> None:
        self.results: list[ImageResult] = []

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: Any) -> None:
        self.results.append(result)


def worker_device(requested: str, half: bool) -> str:
    """The device on a worker. Ray shows a worker only the GPU it was given, as cuda:0."""
    dev = select_device("cuda" if requested.startswith("cuda") else requested)
    if half and not dev.startswith("cuda"):
        raise BadOptionError("--half needs a CUDA device")
    return dev


class BatchWorker:
    """One Ray actor: loads the model once, then runs shards through the local run loop."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.error: tuple[str, str] | None = None
        self.detector: Detector | None = None
        try:
            options = replace(spec.options, device=worker_device(spec.options.device, spec.options.half))
            # Planned here, where it runs: this node's CUDA and runtimes, this node's export cache (a
            # node's workers make a missing export once: backends.load holds a lock per export).
            plan = backends.plan(spec.work.backend, options.device, spec.work.precision, options.half)
            self.detector = backends.load(spec.ref, replace(options, device=plan.device), plan)
        except DetectError as e:  # said once by the driver, as it would be locally
            self.error = (type(e).__name__, str(e))

    def ready(self) -> tuple[str, str] | None:
        return self.error

    def process(self, shard: list[ImageInput]) -> list[ImageResult]:
        assert self.detector is not None
        w = self.spec.work
        collect = _Collect()
        caption = weights_caption(self.detector.ref)
        sinks = [SinkGroup(output_sinks(w.out, w.formats, w.save_images, caption), [collect])]
        run(image_frames(shard, w.url_timeout, w.max_pixels), self.detector, sinks, w.out, batch=w.batch)
        return collect.results


def _shards(items: Sequence[ImageInput], size: int) -> Iterator[list[ImageInput]]:
    """Lists of inputs with absolute paths: a worker's working folder is not this one."""
    for i in range(0, len(items), size):
        yield [
            replace(it, path=Path(os.path.abspath(it.path))) if it.path is not None else it
            for it in items[i : i + size]
        ]


def _absolute_ref(ref: ModelRef) -> ModelRef:
    """A model file named by a relative path, made absolute for the workers (names and configs stay)."""
    if ref.official or not Path(ref.location).exists():
        return ref
    return replace(ref, location=os.path.abspath(ref.location))


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), or start a local Ray; True if started here."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                **quiet,
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise BadOptionError(f"cannot start or reach {where}: {e}") from e
    return True


def _wants_gpu(ray: Any, device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)


def _worker_count(ray: Any, placement: Placement, gpu: bool, shards: int) -> int:
    if placement.ray_workers:
        n = placement.ray_workers
    else:
        res = ray.cluster_resources()
        n = int(res.get("GPU", 0)) if gpu else int(res.get("CPU", 1))
    return max(1, min(n, shards))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def _failed(items: Sequence[ImageInput], model: str, reason: str) -> list[ImageResult]:
    """Failure records for a shard no worker could finish, stamped like any other record, so that
    --resume keeps them and --retry-failed redoes them."""
    results = []
    for it in items:
        stamp = current_stamp(it)
        size, mtime = (stamp.size, stamp.mtime_ns) if stamp else (None, None)
        results.append(
            ImageResult(it.source, model, error=reason, path=input_path(it), size=size, mtime_ns=mtime)
        )
    return results


def run_ray(
    work: WorkSpec,
    placement: Placement,
    items: Sequence[ImageInput],
    detector: Detector,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """The batch on Ray. `detector` (loaded here, never run) gives the resolved options and names."""
    ray = require_ray()
    out = work.out
    report = RunReport(out)
    start = time.perf_counter()
    shard_size = max(work.batch, 8)
    started_here = _connect(ray, placement.ray_address, placement.ray_workers)
    actors: list[Any] = []
    jsonl = JsonlWriter(out / RESULTS_JSONL, echo)
    try:
        gpu = _wants_gpu(ray, detector.options.device)
        n = _worker_count(ray, placement, gpu, -(-len(items) // shard_size))
        spec = WorkerSpec(_absolute_ref(detector.ref), detector.options, replace(work, out=out.resolve()))
        # A worker that dies (out of memory, a lost node) is restarted and its shard retried.
        remote = ray.remote(max_restarts=2, max_task_retries=2)(BatchWorker)
        resources = {"num_cpus": 1, "num_gpus": 1 if gpu else 0}
        actors = [remote.options(**resources).remote(spec) for _ in range(n)]
        for err in ray.get([a.ready.remote() for a in actors]):
            if err:
                cls = getattr(errors, err[0], None)
                raise (cls if isinstance(cls, type) and issubclass(cls, DetectError) else DetectError)(err[1])

        shards = _shards(items, shard_size)
        in_flight: dict[Any, tuple[Any, list[ImageInput]]] = {}

        def submit(actor: Any) -> None:
            if stop is not None and stop.is_set():
                return
            shard = next(shards, None)
            if shard:
                in_flight[actor.process.remote(shard)] = (actor, shard)

        for actor in actors:
            for _ in range(SHARD_PER_WORKER):
                submit(actor)
        if progress:
            progress.start(len(items))
        while in_flight:
            # A short wait, so a Ctrl-C is seen between waits (handlers run between Python calls).
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            if not done:
                continue
            actor, shard = in_flight.pop(done[0])
            try:
                results = ray.get(done[0])
            except Exception as e:  # the worker gave up on this shard: its inputs are recorded as failed
                results = _failed(shard, detector.name, f"worker failed: {_first_line(e)}")
            for r in results:
                jsonl.write(r, PurePosixPath(r.source), None)
                report.summary.add(r)
                if progress:
                    progress.advance(r)
            submit(actor)
        report.interrupted = report.summary.processed + report.summary.failed < len(items)
        if report.interrupted and stop is not None:
            report.signum = getattr(stop, "signum", None)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.seconds = time.perf_counter() - start
        if progress:
            progress.stop()
        jsonl.close()
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
    return report
