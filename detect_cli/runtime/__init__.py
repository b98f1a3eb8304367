"""Running a cached export without torch or ultralytics: OpenVINO or ONNX Runtime, plus the pre- and
post-processing ultralytics' predictor applies, in NumPy and OpenCV.

Importing torch and ultralytics costs about 2 s and the torch model several hundred MB; a run whose
export (and its parity with PyTorch) is already cached needs neither. What ultralytics does around the
network is reproduced step for step (tests/test_runtime.py compares the two on the same export):

- input: ultralytics' LetterBox for a fixed square input: RT-DETR stretches the picture to the square
  (`scale_fill`), YOLO scales it to fit and pads with grey 114, centred; BGR → RGB, 0..1, NCHW (for
  OpenVINO, that last step is compiled into the graph, which takes the letterboxed uint8 picture as is);
- RT-DETR output (1, queries, 6): cx, cy, w, h normalized, score, class, already top-k by the decoder;
  kept above `conf`, first `max_det`, scaled by the picture's width and height (no clip);
- YOLO output (1, 4 + classes, anchors): best class per anchor above `conf`, class-wise greedy NMS at
  `iou` (ultralytics' `non_max_suppression`), first `max_det`, mapped back through the letterbox and
  clipped; an end-to-end head (YOLO26: (1, 300, 6) boxes in input pixels) skips the NMS.

OpenVINO compiles with a cache folder beside the export (`compiled/`), so a later run loads the
compiled graph instead of compiling again. For folders, `mode="throughput"` compiles with OpenVINO's
THROUGHPUT hint and keeps the plugin's optimal number of requests in flight, results kept in input
order; single images and video use the LATENCY hint.

OpenVINO's own threads never call into Python (no completion callbacks, inputs copied in): one that
waits for the interpreter's lock while the compiled model is torn down either deadlocks or, after the
interpreter has finalized, ends the process in `terminate called without an active exception` (exit
134). No batch leaves a request in flight, whatever ends it, and sessions still open when the
interpreter exits are closed first, requests before the compiled model (`OpenVINOSession.close`).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import Detection, Speed
from detect_cli.runtime.cache import clear, compiled_cache, one_blob_per_config, save_optimized, uint8_ir
from detect_cli.runtime.decode import (
    Decoded,
    batched_nms,
    decode_end2end,
    decode_rtdetr,
    decode_yolo,
    nms,
    unletterbox,
    xywh2xyxy,
)
from detect_cli.runtime.preprocess import Fit, letterbox, to_input, uint8_bgr_input

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "INT8_FLOAT",
    "Decoded",
    "ExportedDetector",
    "Finish",
    "Fit",
    "Mode",
    "OnnxSession",
    "OpenVINOSession",
    "Session",
    "batched_nms",
    "compiled_cache",
    "decode_end2end",
    "decode_rtdetr",
    "decode_yolo",
    "export_names",
    "is_end2end",
    "letterbox",
    "nms",
    "open_session",
    "to_input",
    "uint8_bgr_input",
    "unletterbox",
    "xywh2xyxy",
]

Mode = Literal["latency", "throughput"]
T = TypeVar("T")
Finish = Callable[[int, "np.ndarray", float], T]  # (input index, output, inference ms) -> result
# What an INT8 network's float layers (its head) run in: bf16 where the CPU has it (else OpenVINO runs
# fp32), as OpenVINO's default; measured 8-17 % faster than fp32 there on the trained test pair.
INT8_FLOAT = "bf16"


# --- sessions ---------------------------------------------------------------------------------------


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
            int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) if mode == "throughput" else 1
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
        self._request.infer({0: x}, share_inputs=False)
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
                request.start_async({0: x}, share_inputs=False)
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


# --- the detector -----------------------------------------------------------------------------------


def export_names(artifact: Path, session: Session) -> dict[int, str]:
    """The class names ultralytics wrote into an export: metadata.yaml beside an OpenVINO IR, the
    model's metadata in an ONNX file (read from its open session)."""
    if isinstance(session, OnnxSession):
        names = ast.literal_eval(session.session.get_modelmeta().custom_metadata_map["names"])
    else:
        import yaml

        folder = artifact if artifact.is_dir() else artifact.parent
        names = yaml.safe_load((folder / "metadata.yaml").read_text(encoding="utf-8"))["names"]
    return {int(k): str(v) for k, v in dict(names).items()}


class ExportedDetector(Detector):
    """A Detector over a cached export, run by OpenVINO or ONNX Runtime directly (no torch).
    `network_size`: the PyTorch network's params and GFLOPs, counted when the export was made."""

    def __init__(
        self,
        ref: ModelRef,
        session: Session,
        names: Mapping[int, str],
        options: PredictOptions,
        backend: str,
        end2end: bool = False,
    ) -> None:
        self.ref = ref
        self.model = session
        self.session = session
        self.options = options
        self.backend = backend
        self.precision = getattr(session, "precision", "fp32")
        self.names = dict(names)
        self.end2end = end2end
        self.network_size: dict[str, Any] = {}

    @property
    def nms_free(self) -> bool:
        return self.family == "rtdetr" or self.end2end

    @property
    def in_flight(self) -> int:
        """How many pictures the runtime works on at once (OpenVINO's THROUGHPUT mode: several)."""
        return self.session.requests

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        stretch = self.family == "rtdetr"
        fits: list[Fit] = []
        pre_ms: list[float] = []

        def inputs() -> Iterator[np.ndarray]:  # lazy: a picture is letterboxed as a request frees up
            for image in images:
                start = time.perf_counter()
                square, fit = letterbox(image, self.options.imgsz, stretch)
                fits.append(fit)
                x = self.session.prepare(square)
                pre_ms.append((time.perf_counter() - start) * 1000)
                yield x

        def finish(i: int, output: np.ndarray, infer_ms: float) -> tuple[tuple[Detection, ...], Speed]:
            start = time.perf_counter()
            dets = self._detections(self._decode(output[0], fits[i], images[i].shape[:2]))
            return dets, Speed(pre_ms[i], infer_ms, (time.perf_counter() - start) * 1000)

        return self.session.run_many(inputs(), finish)

    def _decode(self, output: np.ndarray, fit: Fit, shape: tuple[int, int]) -> Decoded:
        if self.family == "rtdetr":
            return decode_rtdetr(output, self.options, shape)
        if self.end2end:
            return decode_end2end(output, self.options, fit, shape)
        return decode_yolo(output, self.options, fit, shape)

    def _detections(self, decoded: Decoded) -> tuple[Detection, ...]:  # type: ignore[override]
        xyxy, scores, classes = decoded.xyxy, decoded.scores, decoded.classes
        if self.options.nms and self.nms_free and len(scores):
            keep = batched_nms(xyxy, scores, classes, self.options.iou)
            xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
        return tuple(
            Detection(c, self.names.get(c, str(c)), float(s), tuple(float(v) for v in b))  # type: ignore[arg-type]
            for b, s, c in zip(xyxy.tolist(), scores.tolist(), classes.astype(int).tolist(), strict=True)
        )


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
