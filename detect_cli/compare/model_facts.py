"""What the report says of each model before any figure: its label (unique, with backend and precision
where one model runs on several), its size and the rules it ran under (`ModelInfo`, made by
`model_info`), and the network input a picture becomes (`input_shape`)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from detect_cli.backends import network_size
from detect_cli.models import COCO_VAL_SOURCE, Detector, get_spec


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What was compared: the model, its size, and how it was run."""

    label: str
    name: str
    family: str
    location: str
    official: bool
    untrained: bool
    classes: int
    params_m: float | None
    gflops: float | None
    device: str
    backend: str
    precision: str
    imgsz: int
    published_map50_95: float | None = None
    published_source: str | None = None
    nms_free: bool = False  # the model's own output needs no NMS (RT-DETR, YOLO26)
    nms: bool = True  # class-wise NMS at `iou` ran on its boxes (YOLO always; NMS-free ones with --nms)
    iou: float | None = None
    fused: bool | None = None  # params and GFLOPs counted on the Conv+BN-fused network (as it ran)
    input_shape: tuple[int, int] | None = None  # (h, w) of the network input for the first input
    input_rule: str = ""  # how the backend makes it: "letterbox-rect", "letterbox-square", "stretch-square"

    @property
    def ran(self) -> str:
        """What ran after the network, in words: "NMS-free", "NMS at IoU 0.7", or both with --nms."""
        iou = f"IoU {self.iou:g}" if self.iou is not None else "its IoU"
        if self.nms_free:
            return f"NMS-free + NMS at {iou} (--nms)" if self.nms else "NMS-free"
        return f"class-wise NMS at {iou}"


def input_shape(detector: Detector, h: int, w: int) -> tuple[tuple[int, int], str]:
    """The network input (h, w) an `h`x`w` picture becomes, and how, as ultralytics' predictor makes it:
    RT-DETR stretches every picture to imgszximgsz ("stretch-square"); YOLO on PyTorch keeps the
    aspect and pads to a multiple of the stride ("letterbox-rect"); an ONNX/OpenVINO export has a fixed
    imgszximgsz input, padded ("letterbox-square")."""
    s = detector.options.imgsz
    if detector.family == "rtdetr":
        return (s, s), "stretch-square"
    if detector.backend != "torch":
        return (s, s), "letterbox-square"
    stride = 32
    r = min(s / h, s / w)
    nh, nw = round(h * r), round(w * r)
    return (nh + (s - nh) % stride, nw + (s - nw) % stride), "letterbox-rect"


INPUT_RULES = {
    "stretch-square": "stretched to a square (aspect not kept)",
    "letterbox-rect": "letterboxed, aspect kept, padded to a multiple of 32",
    "letterbox-square": "letterboxed into the export's fixed square",
}


def model_info(label: str, detector: Detector, first: tuple[int, int] | None = None) -> ModelInfo:
    """Params (M) and GFLOPs from ultralytics' own counters, GFLOPs at an imgszximgsz input: counted on a
    PyTorch model as it ran (ultralytics fuses Conv+BN when it first predicts: `fused` says whether it
    was), read from an export's manifest (counted when the export was made) for exported ones. `first`
    is the first input's (h, w), for the input shape."""
    net = getattr(detector.model, "model", None)
    if "torch" in sys.modules and isinstance(net, sys.modules["torch"].nn.Module):  # a PyTorch model
        size = network_size(net, detector.options.imgsz)
    else:
        size = getattr(detector, "network_size", None) or {}
    params_m, gflops, fused = size.get("params_m"), size.get("gflops"), size.get("fused")
    nms_free = bool(getattr(detector, "nms_free", detector.family == "rtdetr"))
    shape, rule = input_shape(detector, *first) if first else (None, "")
    spec = get_spec(detector.ref.name) if detector.ref.official else None
    o = detector.options
    return ModelInfo(
        label=label,
        name=detector.ref.name,
        family=detector.family,
        location=detector.ref.location,
        official=detector.ref.official,
        untrained=detector.ref.untrained,
        classes=len(detector.names),
        params_m=params_m,
        gflops=gflops,
        device=o.device,
        backend=detector.backend,
        precision=detector.precision,
        imgsz=o.imgsz,
        published_map50_95=spec.published_map if spec else None,
        published_source=COCO_VAL_SOURCE if spec else None,
        nms_free=nms_free,
        nms=not nms_free or o.nms,
        iou=o.iou,
        fused=fused,
        input_shape=shape,
        input_rule=rule,
    )


def unique_labels(names: Sequence[str]) -> list[str]:
    """Display names, made unique (a model compared with itself is 'x' and 'x-2')."""
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def model_labels(detectors: Sequence[Detector]) -> list[str]:
    """Each model's label in the report: its name, and where one model runs on several backends or
    precisions (`--backends`), the backend and precision too ('rtdetr-l openvino int8')."""
    names = [d.name for d in detectors]
    runs = [f"{d.name} {d.backend} {d.precision}" for d in detectors]
    if len(set(runs)) > len(set(names)):
        return unique_labels(runs)
    return unique_labels(names)
