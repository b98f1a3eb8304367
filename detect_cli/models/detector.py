"""`Detector`: a loaded ultralytics model with the options to run it (`PredictOptions`, `--classes`);
`predict` returns typed results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError
from detect_cli.results import Detection, Speed
from detect_cli.sources import ascii_int

if TYPE_CHECKING:
    import numpy as np
from detect_cli.models.refs import ModelRef
from detect_cli.models.registry import Family


@dataclass(frozen=True, slots=True)
class PredictOptions:
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str = "cpu"
    classes: tuple[int, ...] | None = None
    max_det: int = 300
    half: bool = False
    nms: bool = False  # extra class-wise NMS at `iou` after an NMS-free model (RT-DETR, YOLO26)


class Detector:
    """A loaded ultralytics model with the options to run it; `predict` returns typed results.

    `backend` says what runs it (torch, or an export: onnx, openvino) and `precision` the arithmetic
    it runs in (fp32, fp16 on CUDA, bf16 for OpenVINO on CPUs that have it).
    """

    weights_sha256: str | None = None  # what its weights are, by content: set by backends.load

    def __init__(
        self,
        ref: ModelRef,
        model: Any,
        options: PredictOptions,
        backend: str = "torch",
        precision: str | None = None,
    ) -> None:
        self.ref = ref
        self.model = model
        self.options = options
        self.backend = backend
        self.precision = precision or ("fp16" if options.half else "fp32")
        self.names: dict[int, str] = dict(model.names)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def family(self) -> Family:
        return self.ref.family

    @property
    def in_flight(self) -> int:
        """How many pictures the model works on at once, so the run loop hands it that many together
        (an OpenVINO export in THROUGHPUT mode: several; PyTorch: one call per batch)."""
        return 1

    @property
    def nms_free(self) -> bool:
        """True for models that predict without NMS, so `--iou` does nothing (`--nms` adds it): RT-DETR,
        and YOLO models with an end-to-end (one-to-one) head, YOLO26, which `predict` runs end to end."""
        if self.family == "rtdetr":
            return True
        if isinstance(getattr(self.model, "model", None), str):  # an export: the registry says
            spec = self.ref.spec
            return bool(spec and spec.nms_free)
        return has_one2one_head(self.model)

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        """Run the model on BGR images (one batch); one (detections, speed) per image."""
        o = self.options
        # No stdout redirect here: it is process-wide and would catch other threads' output (--json
        # lines written behind the run loop). ultralytics' logger already writes to stderr.
        results = self.model.predict(
            list(images),
            conf=o.conf,
            iou=o.iou,
            imgsz=o.imgsz,
            device=o.device,
            classes=list(o.classes) if o.classes is not None else None,
            max_det=o.max_det,
            verbose=False,
            **self._precision_kwargs(),
            **self._head_kwargs(),
        )
        return [
            (self._detections(r), Speed(**{k: float(r.speed[k]) for k in Speed.__slots__})) for r in results
        ]

    def _head_kwargs(self) -> dict[str, Any]:
        """YOLO26 has two heads: one-to-many (needs NMS) and one-to-one (end to end, as published).
        ultralytics 8.4 runs the one-to-many head with NMS unless `nms=False`; ask for the end-to-end one."""
        return {"nms": False} if self.family == "yolo" and self.nms_free else {}

    def _precision_kwargs(self) -> dict[str, Any]:
        """fp16 is `quantize=16` in current ultralytics and `half=True` in older releases."""
        if not self.options.half:
            return {}
        from ultralytics.cfg import DEFAULT_CFG_DICT

        return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}

    def _detections(self, result: Any) -> tuple[Detection, ...]:
        boxes = result.boxes
        xyxy, conf, cls = boxes.xyxy, boxes.conf, boxes.cls
        if self.options.nms and self.nms_free and len(conf):
            from torchvision.ops import batched_nms

            keep = batched_nms(xyxy.float(), conf.float(), cls.long(), self.options.iou)
            xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep]
        rows = zip(xyxy.cpu().tolist(), conf.cpu().tolist(), cls.cpu().int().tolist(), strict=True)
        return tuple(Detection(c, self.names.get(c, str(c)), s, tuple(b)) for b, s, c in rows)


def class_tokens(classes: str) -> list[str]:
    """The names or ids of a `--classes` list; an empty list ('', ',') is refused: it would keep no
    detection at all, silently."""
    tokens = [t.strip() for t in classes.split(",") if t.strip()]
    if not tokens:
        raise BadOptionError(
            f"--classes {classes!r} names no class; give names or ids, e.g. 'person,car' or '0,2' "
            "(leave --classes out to keep every class)"
        )
    return tokens


def resolve_classes(classes: str | None, names: dict[int, str]) -> tuple[int, ...] | None:
    """'person,3' -> ids; names are matched case-insensitively against the model's class names, ids
    are ASCII digits."""
    if classes is None:
        return None
    by_name = {n.lower(): i for i, n in names.items()}
    ids: list[int] = []
    for token in class_tokens(classes):
        if (index := ascii_int(token)) is not None and index in names:
            ids.append(index)
        elif token.lower() in by_name:
            ids.append(by_name[token.lower()])
        else:
            raise BadOptionError(
                f"unknown class '{token}' for this model (it knows {len(names)} classes, e.g. "
                + ", ".join(list(names.values())[:5])
                + ")"
            )
    return tuple(dict.fromkeys(ids))


def has_one2one_head(model: Any) -> bool:
    """True for a loaded PyTorch YOLO whose detection head has the end-to-end (one-to-one) branch."""
    layers = getattr(getattr(model, "model", None), "model", None)
    try:
        head = layers[-1]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return False
    return getattr(head, "one2one_cv2", None) is not None
