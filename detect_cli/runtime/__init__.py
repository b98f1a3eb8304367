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
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import Detection, Speed
from detect_cli.runtime.cache import compiled_cache
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
from detect_cli.runtime.sessions import (
    INT8_FLOAT,
    Finish,
    Mode,
    OnnxSession,
    OpenVINOSession,
    Session,
    is_end2end,
    open_session,
)

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


# --- sessions ---------------------------------------------------------------------------------------


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
