"""The Detector over a cached export: each picture letterboxed, run by its session, its output decoded
as its family's, in input order, with the time each step took."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.results import Detection, Speed
from detect_cli.runtime.decode import Decoded, batched_nms, decode_end2end, decode_rtdetr, decode_yolo
from detect_cli.runtime.preprocess import Fit, letterbox
from detect_cli.runtime.sessions import OnnxSession, Session

if TYPE_CHECKING:
    import numpy as np


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
