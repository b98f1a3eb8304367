"""A compiled network: OpenVINO on the CPU or ONNX Runtime, one input at a time (`run`) or a stream of
them (`run_many`).

OpenVINO compiles with a cache folder beside the export (`compiled/`, runtime.cache), so a later run
loads the compiled graph instead of compiling again. For folders, `mode="throughput"` compiles with
OpenVINO's THROUGHPUT hint and keeps twice the plugin's optimal number of requests in flight (one queued
behind each running one), results kept in input order; single images and video use the LATENCY hint.

OpenVINO's own threads never call into Python (no completion callbacks, inputs copied in): one that
waits for the interpreter's lock while the compiled model is torn down either deadlocks or, after the
interpreter has finalized, ends the process in `terminate called without an active exception` (exit
134). No batch leaves a request in flight, whatever ends it, and sessions still open when the
interpreter exits are closed first, requests before the compiled model (`OpenVINOSession.close`).
"""

from __future__ import annotations

import atexit
import contextlib
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from detect_cli.runtime.cache import clear, compiled_cache, one_blob_per_config, save_optimized, uint8_ir
from detect_cli.runtime.preprocess import to_input, uint8_bgr_input

if TYPE_CHECKING:
    import numpy as np

Mode = Literal["latency", "throughput"]
T = TypeVar("T")
Finish = Callable[[int, "np.ndarray", float], T]  # (input index, output, inference ms) -> result
# What an INT8 network's float layers (its head) run in: bf16 where the CPU has it (else OpenVINO runs
# fp32), as OpenVINO's default; measured 8-17 % faster than fp32 there on the trained test pair.
INT8_FLOAT = "bf16"
# THROUGHPUT mode keeps this many requests in flight per stream: while one runs, the next waits queued
# inside OpenVINO, so a stream never idles while Python (decoding, drawing, the interpreter's lock) is
# late handing it a picture, as benchmark_app's C++ loop never is. YOLO11n folder runs on 2 cores: 1.11x
# the pictures a second (4 interleaved rounds, 512 pictures), for about 25 MB; RT-DETR-L unchanged.
QUEUED_PER_STREAM = 2


class Session:
    """One compiled network. `prepare` turns a letterboxed BGR uint8 picture into the input the network
    takes; `run` runs one input and returns the first output and the milliseconds it took; `run_many`
    runs a stream of inputs (concurrently where the runtime can) and returns, in input order, what
    `finish(index, output, ms)` made of each output."""

    requests = 1  # inputs worth having in flight at once

    def prepare(self, square: np.ndarray) -> np.ndarray:
        return to_input(square)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def run_many(self, xs: Iterable[np.ndarray], finish: Finish[T]) -> list[T]:
        return [finish(i, *self.run(x)) for i, x in enumerate(xs)]


_open_sessions: weakref.WeakSet[OpenVINOSession] = weakref.WeakSet()


_exit_hook: list[bool] = []  # registered once, at the first session


def _close_open_sessions() -> None:
    """At the interpreter's exit, before its finalization and the C++ runtime's static destructors:
    every OpenVINO session still open is closed (requests finished, then released in order)."""
    for session in list(_open_sessions):
        session.close()


def _track(session: OpenVINOSession) -> None:
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(_close_open_sessions)
    _open_sessions.add(session)


class OpenVINOSession(Session):
    """An OpenVINO IR compiled for the CPU at `precision`, through the compiled-model cache `cache`."""

    def __init__(self, xml: Path, precision: str, cache: Path | None, mode: Mode = "latency") -> None:
        import openvino as ov

        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT" if mode == "throughput" else "LATENCY",
            # An INT8 network (quantize.py) runs its quantized layers in int8 and the layers kept in
            # float (the detection head) at INT8_FLOAT.
            "INFERENCE_PRECISION_HINT": {"fp32": ov.Type.f32, "bf16": ov.Type.bf16, "int8": INT8_FLOAT}[
                precision
            ],
        }
        core = ov.Core()
        with compiled_cache(cache) as folder:
            if folder is None:
                self.compiled = core.compile_model(uint8_bgr_input(core.read_model(str(xml))), "CPU", config)
            else:
                try:
                    # By path: OpenVINO finds the compiled blob from the file's path, without reading
                    # (and holding in memory) the network's weights to hash them, as for a model object.
                    with one_blob_per_config(folder, f"{precision}-{mode}"):
                        ir = uint8_ir(core, xml, folder)
                        self.compiled = core.compile_model(ir, "CPU", {**config, "CACHE_DIR": str(folder)})
                except (RuntimeError, OSError):
                    # A file cut short by a killed run, or a cache that cannot be written (a full disk):
                    # drop what is there and compile without the cache; the next run caches it again.
                    clear(folder)
                    model = uint8_bgr_input(core.read_model(str(xml)))
                    self.compiled = core.compile_model(model, "CPU", config)
        actual = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = "bf16" if actual == ov.Type.bf16 else "fp16" if actual == ov.Type.f16 else "fp32"
        if precision == "int8":
            self.precision = "int8"
        self.mode = mode
        self.requests = (
            QUEUED_PER_STREAM * int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            if mode == "throughput"
            else 1
        )
        self._request: Any = self.compiled.create_infer_request()
        self._pool: list[Any] = []  # the requests of `run_many`, made at its first call
        _track(self)

    def close(self) -> None:
        """Release the requests, then the compiled model, in that order (none is in flight between
        batches). Idempotent; the session cannot run afterwards."""
        self._pool = []
        self._request = None
        self.compiled = None
        _open_sessions.discard(self)

    def _open(self) -> None:
        if self.compiled is None:
            raise RuntimeError("the OpenVINO session was closed")

    def prepare(self, square: np.ndarray) -> np.ndarray:
        return square[None]  # 1xHxWx3 uint8 BGR: the graph converts it (uint8_bgr_input)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        self._open()
        start = time.perf_counter()
        _copy_in(self._request, x)
        self._request.infer()
        out = self._request.get_output_tensor(0).data.copy()
        return out, (time.perf_counter() - start) * 1000

    def run_many(self, xs: Iterable[np.ndarray], finish: Finish[T]) -> list[T]:
        """`requests` inputs in flight, taken back in input order: while the oldest one's output is
        post-processed here, the others run. No Python callback: OpenVINO's threads never wait for
        the interpreter (the inputs are copied in, so none holds a Python object either)."""
        if self.requests <= 1:
            return super().run_many(xs, finish)
        self._open()
        if not self._pool:
            self._pool = [self.compiled.create_infer_request() for _ in range(self.requests)]
        free = list(self._pool)
        busy: deque[tuple[int, Any]] = deque()  # (input index, request), oldest first
        results: list[T] = []

        def take_oldest() -> Any:
            index, request = busy.popleft()
            request.wait()  # without the GIL; raises the request's own failure
            results.append(finish(index, request.get_output_tensor(0).data, request.latency))
            return request  # free again: its output was read above

        try:
            for i, x in enumerate(xs):  # each input is made just before it starts (xs is lazy)
                request = free.pop() if free else take_oldest()
                _copy_in(request, x)
                request.start_async()
                busy.append((i, request))
            while busy:
                take_oldest()
        except BaseException:
            # A failure, a Ctrl-C, an input that could not be made: no request is left in flight.
            for _, request in busy:
                with contextlib.suppress(Exception):  # its failure is moot: one is being raised
                    request.wait()
            raise
        return results


def _copy_in(request: Any, x: np.ndarray) -> None:
    """The input copied into the request's own tensor (it holds no Python object): a third of the CPU
    time of handing it to `start_async`/`infer` with `share_inputs=False`, which copies it too."""
    import numpy as np

    np.copyto(request.get_input_tensor(0).data, x)


class OnnxSession(Session):
    """An ONNX model in ONNX Runtime on the CPU. The graph ORT optimizes is saved beside the export
    (`compiled/`) the first time and loaded as is afterwards."""

    def __init__(self, model: Path, cache: Path | None) -> None:
        with compiled_cache(cache) as folder:
            optimized = folder / f"{model.stem}.optimized.onnx" if folder is not None else None
            if optimized is not None and not optimized.is_file():
                save_optimized(model, optimized)
            try:
                self.session = _ort_session(optimized or model)
            except Exception:  # a file cut short by a killed run: the export itself still loads
                if optimized is None:
                    raise
                optimized.unlink(missing_ok=True)
                self.session = _ort_session(model)
        self.precision = "fp32"
        self._input = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = self.session.run(None, {self._input: x})[0]
        return out, (time.perf_counter() - start) * 1000


def _ort_session(model: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its notes are not the user's business
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def open_session(artifact: Path, backend: str, precision: str, cache: Path | None, mode: Mode) -> Session:
    if backend == "openvino":
        xml = artifact if artifact.suffix == ".xml" else next(artifact.glob("*.xml"))
        return OpenVINOSession(xml, precision, cache, mode)
    return OnnxSession(artifact, cache)


def is_end2end(session: Session) -> bool:
    """True when the network's output is (1, boxes, 6) rows: an end-to-end YOLO head (YOLO26)."""
    if isinstance(session, OpenVINOSession):
        shape = session.compiled.output(0).get_partial_shape().to_shape()
    else:
        shape = session.session.get_outputs()[0].shape  # type: ignore[attr-defined]
    return len(shape) == 3 and int(shape[-1]) == 6
