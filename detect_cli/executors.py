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

import contextlib
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
    # call, so each request has a next picture while the last results are written; the next call's
    # pictures are decoded meanwhile.
    batch = max(spec.batch, 2 * detector.in_flight if detector.in_flight > 1 else 1)
    frames = image_frames(items, spec.url_timeout, spec.max_pixels, stop, depth=max(4, batch))
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


RAY_CONNECT_S = 30.0  # the deadline for reaching a cluster (or starting a local Ray); DETECT_RAY_CONNECT_S


def connect_deadline() -> float:
    try:
        return max(0.1, float(os.environ.get("DETECT_RAY_CONNECT_S", RAY_CONNECT_S)))
    except ValueError:
        return RAY_CONNECT_S


RAY_GCS_PORT = 6379  # a cluster address without a port names Ray's default


class _Stopped(Exception):
    """Ctrl-C or SIGTERM while waiting for Ray."""


def _endpoint(address: str) -> tuple[str, int] | None:
    """The host and port an address names (`host:port`, `ray://host:port`), None for those Ray
    resolves itself (`auto`, `local`)."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return rest, RAY_GCS_PORT
    return host.strip("[]"), int(port)


H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # preface, SETTINGS
H2_SETTINGS = 0x04  # the frame type a gRPC server (Ray's GCS, its client server) answers with at once


def _reach(endpoint: tuple[str, int], timeout: float) -> None:
    """Whether a Ray server answers at `endpoint`, in plain Python (a thread that may be left behind):
    a TCP connection, then HTTP/2's greeting, which any gRPC server returns at once with its own
    settings. A port nobody listens on, or one that accepts and says nothing, fails here instead of in
    Ray's own retries (which print as they go, and end by terminating the process)."""
    import socket

    deadline = time.monotonic() + timeout
    head = b""
    try:
        with socket.create_connection(endpoint, timeout=timeout) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return  # a TLS cluster expects a handshake first: the connection is all there is to see
            conn.sendall(H2_HELLO)
            while len(head) < 9:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise ConnectionError("no answer") from None
    except OSError as e:
        raise ConnectionError(e.strerror or str(e) or type(e).__name__) from None
    if len(head) < 9 or head[3] != H2_SETTINGS:
        raise ConnectionError("what answers there is not Ray")


def _quiet_ray() -> dict[str, Any]:
    """Ray's own output kept off the terminal: its C++ core logs only errors, its Python side logs only
    errors, and its workers' output stays in their log files."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    return {"log_to_driver": False, "logging_level": logging.ERROR}


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 on /dev/null while Ray connects: its C++ client logs each failed try (before
    its log level is read) straight to it. What goes wrong is said once, by the caller."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr to protect
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _connect(ray: Any, address: str | None, workers: int | None, stop: threading.Event | None = None) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), or start a local Ray; True if started here.

    A cluster is first checked from a daemon thread, within `connect_deadline()` seconds, while this
    thread watches `stop`: an address where no Ray server answers is one `BadOptionError`, a stop request
    (Ctrl-C, SIGTERM) raises `_Stopped`. Ray itself then starts here, in the main thread (the processes
    a local Ray starts die with the thread that started them), its C++ lines kept off the terminal and
    this process's own SIGTERM handler kept."""
    import signal

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    where = f"Ray at {address}" if address else "a local Ray"
    seconds = connect_deadline()
    endpoint = _endpoint(address) if address else None
    if endpoint:
        _check_reachable(endpoint, where, seconds, stop)
    kwargs: dict[str, Any] = _quiet_ray()
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        with _c_stderr_silenced():
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadOptionError(f"cannot start or reach {where}: {reason}") from e
    finally:
        if main and handler is not None:  # ray.init installs its own (exit at once): the run's is kept
            signal.signal(signal.SIGTERM, handler)
    return True


def _check_reachable(
    endpoint: tuple[str, int], where: str, seconds: float, stop: threading.Event | None
) -> None:
    """`_reach` in a daemon thread, this one watching `stop` and the deadline."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            _reach(endpoint, seconds)
            outcome.append(None)
        except BaseException as e:  # handed to the waiting thread
            outcome.append(e)

    thread = threading.Thread(target=attempt, name="detect-ray-reach", daemon=True)
    deadline = time.monotonic() + seconds
    thread.start()
    while not outcome:
        thread.join(0.1)
        if stop is not None and stop.is_set():
            raise _Stopped
        if not outcome and time.monotonic() > deadline:
            break
    error = outcome[0] if outcome else ConnectionError("no answer")
    if error is not None:
        raise BadOptionError(f"cannot reach {where} within {seconds:g}s: {error}")


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


def _failed(items: Sequence[ImageInput], detector: Detector, reason: str) -> list[ImageResult]:
    """Failure records for a shard no worker could finish, stamped like any other record, so that
    --resume keeps them and --retry-failed redoes them, and naming the run's weights as every record
    does, so that a resume with other weights is refused even when they are all a folder holds."""
    results = []
    for it in items:
        stamp = current_stamp(it)
        size, mtime = (stamp.size, stamp.mtime_ns) if stamp else (None, None)
        at = {"path": input_path(it), "size": size, "mtime_ns": mtime}
        results.append(
            ImageResult(it.source, detector.name, error=reason, **at, weights_sha256=detector.weights_sha256)
        )
    return results


def _start_workers(
    ray: Any, work: WorkSpec, placement: Placement, detector: Detector, shards: int
) -> list[Any]:
    """One BatchWorker actor per worker the placement allows for `shards` shards, each given one CPU,
    and one GPU when the model runs on CUDA; each loads the model on its own machine."""
    gpu = _wants_gpu(ray, detector.options.device)
    n = _worker_count(ray, placement, gpu, shards)
    spec = WorkerSpec(_absolute_ref(detector.ref), detector.options, replace(work, out=work.out.resolve()))
    # A worker that dies (out of memory, a lost node) is restarted and its shard retried.
    remote = ray.remote(max_restarts=2, max_task_retries=2)(BatchWorker)
    resources = {"num_cpus": 1, "num_gpus": 1 if gpu else 0}
    return [remote.options(**resources).remote(spec) for _ in range(n)]


def _wait_until_ready(ray: Any, actors: Sequence[Any]) -> None:
    """Wait until every worker has loaded its model; a worker's DetectError (a missing backend on its
    machine, weights it cannot read) is raised here, as the same error class, as it would be locally."""
    for err in ray.get([a.ready.remote() for a in actors]):
        if err:
            cls = getattr(errors, err[0], None)
            raise (cls if isinstance(cls, type) and issubclass(cls, DetectError) else DetectError)(err[1])


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
    try:
        started_here = _connect(ray, placement.ray_address, placement.ray_workers, stop)
    except (_Stopped, KeyboardInterrupt) as e:  # stopped while waiting for Ray: nothing ran
        report.interrupted = True
        report.signum = getattr(e, "signum", None) or getattr(stop, "signum", None)
        report.seconds = time.perf_counter() - start
        return report
    actors: list[Any] = []
    jsonl = JsonlWriter(out / RESULTS_JSONL, echo)
    try:
        actors = _start_workers(ray, work, placement, detector, -(-len(items) // shard_size))
        _wait_until_ready(ray, actors)
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
                results = _failed(shard, detector, f"worker failed: {_first_line(e)}")
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
