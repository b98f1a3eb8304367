"""`detect explain`: where RT-DETR looked for each detection, beside a YOLO activation map.

RT-DETR (torch backend only) is run once with forward hooks on
- the cross-attention (`MSDeformAttn`) of the decoder layer whose output gives the boxes: its input
  query and reference boxes, and the outputs of its `sampling_offsets` and `attention_weights`
  layers, from which the sampling locations and softmaxed weights follow by the module's own formula;
- the AIFI encoder's `nn.MultiheadAttention`: its attention weights, averaged over heads;
- the decoder head: its per-query scores, to know which query produced each kept box (the head keeps
  the top (query, class) pairs by score; the predictor then drops those at or below --conf).

YOLO gets EigenCAM: the first principal component of each neck output (the Detect head's inputs).
Hooks are removed in `finally` blocks, and what the model returns is not changed by them.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from detect_cli.backends import Plan, exported_kind, load_detector
from detect_cli.errors import BadOptionError, InputError, OutputError
from detect_cli.jobs.common import refuse_other_kind, warn_about_options
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.render import draw_detections, draw_title
from detect_cli.results import RANDOM_WEIGHTS, Detection
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import stop_on_signals
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    ImageInput,
    discover_images,
    read_image,
)
from detect_cli.writers import RUN_FAULTS, JsonlWriter, atomic_write_bytes, name_outputs, output_file

if TYPE_CHECKING:
    import numpy as np
    import torch

EXPLAIN_JSONL = "explain.jsonl"
TORCH_ONLY = (
    "explain needs --backend torch: exported models (ONNX, OpenVINO) run as one compiled graph "
    "whose attention cannot be read"
)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SamplingPoint:
    """One deformable-attention sample of a query: where (pixels of the original image) and how much."""

    head: int
    level: int
    point: int
    x: float
    y: float
    weight: float  # softmax over the levels x points of one head: a head's weights sum to 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "level": self.level,
            "point": self.point,
            "xy": [round(self.x, 2), round(self.y, 2)],
            "weight": round(self.weight, 6),
        }


@dataclass(frozen=True, slots=True)
class AttentionSpread:
    """How far the encoder token at a box centre looked: attention-weighted distance, mass outside the box."""

    grid: tuple[int, int]  # (rows, cols) of AIFI's token grid (the stride-32 level)
    token: tuple[int, int]  # (row, col) of the query token, the one holding the box centre
    mean_distance_px: float  # sum over tokens of weight x distance between token centres, in pixels
    share_outside_box: float  # attention mass on tokens whose centre lies outside the box

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": list(self.grid),
            "token": list(self.token),
            "mean_distance_px": round(self.mean_distance_px, 2),
            "share_outside_box": round(self.share_outside_box, 4),
        }


@dataclass(frozen=True, slots=True)
class ExplainedDetection:
    """An RT-DETR detection, the decoder query that produced it and what that query attended to."""

    detection: Detection
    query: int
    sampling_points: tuple[SamplingPoint, ...]
    spread: AttentionSpread
    heatmap: np.ndarray = field(repr=False, compare=False)  # encoder attention, image-sized (H, W) float32

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.detection.to_dict(),
            "query": self.query,
            "attention_spread": self.spread.to_dict(),
            "sampling_points": [p.to_dict() for p in self.sampling_points],
        }


@dataclass(frozen=True, slots=True)
class YoloActivation:
    """EigenCAM of a YOLO model on one image, with that model's detections for the same image."""

    model: str
    detections: tuple[Detection, ...]
    heatmap: np.ndarray = field(repr=False, compare=False)  # image-sized (H, W) float32 in [0, 1]
    explained_variance: tuple[float, ...]  # share of each neck level's variance that its map keeps

    def to_dict(self, objects: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "count": len(self.detections),
            "detections": [d.to_dict() for d in self.detections[:objects]],
            "eigencam_explained_variance": [round(v, 4) for v in self.explained_variance],
        }


@dataclass(frozen=True, slots=True)
class ImageExplanation:
    """Everything `explain` found for one image; `to_dict` is its explain.jsonl line."""

    source: str
    width: int
    height: int
    model: str
    detections_total: int
    explained: tuple[ExplainedDetection, ...]
    yolo: YoloActivation | None = None
    picture: str | None = None
    error: str | None = None

    def to_dict(self, objects: int = 5) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height}
        out["model"] = self.model
        if self.error:
            return {**out, "error": self.error}
        out["picture"] = self.picture
        out["count"] = self.detections_total
        if not self.detections_total:
            out["note"] = "no detections"
        out["detections"] = [d.to_dict() for d in self.explained]
        out["yolo"] = self.yolo.to_dict(objects) if self.yolo else None
        return out


# --- capture ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecoderCapture:
    """Cross-attention of the box-producing decoder layer, for every query of one image.

    `query` and `reference` are that module's inputs (query with its position embedding; reference
    boxes normalised cx, cy, w, h); `locations` (normalised x, y) and `weights` are what it samples.
    """

    query: np.ndarray  # (Q, C)
    reference: np.ndarray  # (Q, 4) or (Q, 2)
    shapes: tuple[tuple[int, int], ...]  # (H, W) of each level
    locations: np.ndarray  # (Q, heads, levels, points, 2)
    weights: np.ndarray  # (Q, heads, levels, points)
    boxes: np.ndarray  # (Q, 4) the layer's output boxes, normalised cx, cy, w, h
    scores: np.ndarray  # (Q, classes) their class scores (sigmoid)


@dataclass(frozen=True, slots=True)
class EncoderCapture:
    grid: tuple[int, int]  # (rows, cols) of AIFI's tokens
    attention: np.ndarray  # (rows*cols, rows*cols): row i is token i's attention, averaged over heads


@dataclass(frozen=True, slots=True)
class RTDETRCapture:
    detections: tuple[Detection, ...]
    queries: tuple[int, ...]  # the decoder query of each detection
    decoder: DecoderCapture
    encoder: EncoderCapture


def running_net(detector: Detector, image: np.ndarray) -> torch.nn.Module:
    """The nn.Module ultralytics' predictor runs: a fused copy of the model, made on its first call.

    Hooks must go on that copy, so a detector that has not run yet runs once (without hooks) first.
    """
    import torch

    if detector.backend != "torch":
        raise BadOptionError(TORCH_ONLY)
    model = detector.model
    if getattr(model, "predictor", None) is None:
        detector.predict([image])
    net = getattr(getattr(model.predictor, "model", None), "model", None)
    if not isinstance(net, torch.nn.Module):
        raise BadOptionError(TORCH_ONLY)
    return net


@contextlib.contextmanager
def hooked(*registrations: Callable[[], Any]) -> Iterator[None]:
    """Attach hooks (each callable registers one and returns its handle) and always remove them."""
    handles: list[Any] = []
    try:
        for register in registrations:
            handles.append(register())
        yield
    finally:
        for handle in handles:
            handle.remove()


def _rtdetr_modules(net: torch.nn.Module) -> tuple[Any, Any, Any]:
    """(decoder head, the cross-attention of the layer that gives the boxes, the AIFI encoder layer)."""
    from ultralytics.nn.modules.head import RTDETRDecoder
    from ultralytics.nn.modules.transformer import AIFI

    head = net.model[-1]
    aifi = next((m for m in net.modules() if isinstance(m, AIFI)), None)
    if not isinstance(head, RTDETRDecoder) or aifi is None:
        raise BadOptionError("explain needs an RT-DETR model for --model (its decoder and AIFI encoder)")
    # In eval the decoder stops at eval_idx (the last layer by default): its output makes the boxes.
    cross = head.decoder.layers[head.decoder.eval_idx].cross_attn
    return head, cross, aifi


def sampling_locations(
    cross: Any, reference: torch.Tensor, offsets: torch.Tensor, logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """MSDeformAttn's sampling locations and weights from its reference boxes (bs, Q, 1, 4) and the
    outputs of its `sampling_offsets` and `attention_weights` layers, with the module's own arithmetic;
    returned as (bs, Q, heads, levels, points, 2) and (bs, Q, heads, levels, points). The module folds
    (levels, points) into one axis, levels outer, so unfolding it is a view."""
    import torch.nn.functional as F

    bs, n_q = offsets.shape[:2]
    heads, levels, points = cross.n_heads, cross.n_levels, cross.n_points
    total = levels * points
    offsets = offsets.view(bs, n_q, heads, total, 2)
    weights = F.softmax(logits.view(bs, n_q, heads, total), -1)
    if reference.shape[-1] != 4:  # ultralytics' RT-DETR decoders pass boxes; 2-d points are not handled
        raise BadOptionError("explain supports RT-DETR decoders with reference boxes (cx, cy, w, h)")
    locations = reference[:, :, None, :, :2] + offsets / points * reference[:, :, None, :, 2:] * 0.5
    return locations.view(bs, n_q, heads, levels, points, 2), weights.view(bs, n_q, heads, levels, points)


def _kept_queries(
    head: Any, dec_boxes: torch.Tensor, dec_scores: torch.Tensor, y: torch.Tensor, detector: Detector
) -> list[int]:
    """The query of each box the predictor keeps, in its order.

    The head takes the top-k (query, class) pairs of the flattened sigmoid scores (its `postprocess`),
    the predictor then keeps rows scoring above --conf (and in --classes), at most max_det. The same
    top-k is taken here on the same tensor, and checked against the head's own output row by row.
    """
    import torch

    scores = dec_scores.squeeze(0).sigmoid().flatten(1)  # (bs, Q * nc)
    k = min(head.num_queries, scores.shape[1])
    _, index = scores.topk(k, dim=1)
    query_idx = torch.div(index, head.nc, rounding_mode="floor")[0]
    boxes = dec_boxes.squeeze(0)[0][query_idx]
    if not (
        torch.equal(boxes, y[0, :, :4]) and torch.equal((index[0] - query_idx * head.nc).float(), y[0, :, 5])
    ):
        raise RuntimeError("could not map RT-DETR's boxes to their decoder queries (ultralytics changed?)")
    o = detector.options
    keep = y[0, :, 4] > o.conf
    if o.classes is not None:
        keep &= (y[0, :, 5:6] == torch.tensor(o.classes, device=y.device)).any(1)
    return query_idx[keep.nonzero().flatten()][: o.max_det].tolist()


def capture_rtdetr(detector: Detector, image: np.ndarray) -> RTDETRCapture:
    """Run RT-DETR on one BGR image with hooks attached; its detections and what its attention did."""
    import numpy as np

    net = running_net(detector, image)
    head, cross, aifi = _rtdetr_modules(net)
    seen: dict[str, Any] = {}

    def on_cross(module: Any, args: tuple, kwargs: dict) -> None:
        seen["query"], seen["reference"], _, seen["shapes"] = args[:4]

    def on_offsets(module: Any, args: tuple, out: torch.Tensor) -> None:
        seen["offsets"] = out

    def on_logits(module: Any, args: tuple, out: torch.Tensor) -> None:
        seen["logits"] = out

    def on_aifi(module: Any, args: tuple) -> None:
        seen["grid"] = tuple(args[0].shape[2:])

    def ask_weights(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        # AIFI already calls with the defaults (weights returned, averaged over heads); make sure of it.
        return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

    def on_ma(module: Any, args: tuple, kwargs: dict, out: tuple) -> None:
        seen["attention"] = out[1]

    def on_head(module: Any, args: tuple, out: tuple) -> None:
        seen["y"], (seen["dec_boxes"], seen["dec_scores"], *_) = out

    with hooked(
        lambda: cross.register_forward_pre_hook(on_cross, with_kwargs=True),
        lambda: cross.sampling_offsets.register_forward_hook(on_offsets),
        lambda: cross.attention_weights.register_forward_hook(on_logits),
        lambda: aifi.register_forward_pre_hook(on_aifi),
        lambda: aifi.ma.register_forward_pre_hook(ask_weights, with_kwargs=True),
        lambda: aifi.ma.register_forward_hook(on_ma, with_kwargs=True),
        lambda: head.register_forward_hook(on_head),
    ):
        ((detections, _),) = detector.predict([image])
    locations, weights = sampling_locations(cross, seen["reference"], seen["offsets"], seen["logits"])
    queries = _kept_queries(head, seen["dec_boxes"], seen["dec_scores"], seen["y"], detector)
    if len(queries) != len(detections):
        raise RuntimeError(f"{len(detections)} detections but {len(queries)} queries mapped to them")

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()[0]

    decoder = DecoderCapture(
        query=arr(seen["query"]),
        reference=arr(seen["reference"])[:, 0],
        shapes=tuple((int(h), int(w)) for h, w in seen["shapes"]),
        locations=arr(locations),
        weights=arr(weights),
        boxes=arr(seen["dec_boxes"].squeeze(0)),
        scores=arr(seen["dec_scores"].squeeze(0).sigmoid()),
    )
    encoder = EncoderCapture(grid=seen["grid"], attention=np.ascontiguousarray(arr(seen["attention"])))
    return RTDETRCapture(tuple(detections), tuple(queries), decoder, encoder)


def attention_heatmap(encoder: EncoderCapture, token: int, size: tuple[int, int]) -> np.ndarray:
    """Token `token`'s attention over the grid, bilinearly upsampled to `size` (H, W).

    RT-DETR's predictor stretches the image to the square input (no letterbox), so the token grid
    covers the whole image and a plain resize puts each token over its part of the picture.
    """
    import torch
    import torch.nn.functional as F

    rows, cols = encoder.grid
    grid = torch.from_numpy(encoder.attention[token].reshape(1, 1, rows, cols))
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def attention_spread(
    encoder: EncoderCapture, xyxy: Sequence[float], width: int, height: int
) -> tuple[int, AttentionSpread]:
    """The token holding the box centre, and how far its attention reached (in original-image pixels)."""
    import numpy as np

    rows, cols = encoder.grid
    x1, y1, x2, y2 = xyxy
    col = min(max(int((x1 + x2) / 2 / width * cols), 0), cols - 1)
    row = min(max(int((y1 + y2) / 2 / height * rows), 0), rows - 1)
    token = row * cols + col
    weights = encoder.attention[token].astype(np.float64)
    ys, xs = np.divmod(np.arange(rows * cols), cols)
    cx, cy = (xs + 0.5) / cols * width, (ys + 0.5) / rows * height  # token centres in pixels
    distance = np.hypot(cx - cx[token], cy - cy[token])
    outside = (cx < x1) | (cx > x2) | (cy < y1) | (cy > y2)
    spread = AttentionSpread(
        grid=(rows, cols),
        token=(int(row), int(col)),
        mean_distance_px=float((weights * distance).sum() / weights.sum()),
        share_outside_box=float(weights[outside].sum() / weights.sum()),
    )
    return token, spread


def explain_rtdetr(
    detector: Detector, image: np.ndarray, objects: int = 5
) -> tuple[int, tuple[ExplainedDetection, ...]]:
    """(how many detections RT-DETR kept, the first `objects` of them explained: highest scores first)."""
    height, width = image.shape[:2]
    cap = capture_rtdetr(detector, image)
    explained = []
    for det, query in list(zip(cap.detections, cap.queries, strict=True))[:objects]:
        locations, weights = cap.decoder.locations[query], cap.decoder.weights[query]
        points = tuple(
            SamplingPoint(h, lv, p, float(x * width), float(y * height), float(weights[h, lv, p]))
            for h in range(weights.shape[0])
            for lv in range(weights.shape[1])
            for p in range(weights.shape[2])
            for x, y in [locations[h, lv, p]]
        )
        token, spread = attention_spread(cap.encoder, det.xyxy, width, height)
        heat = attention_heatmap(cap.encoder, token, (height, width))
        explained.append(ExplainedDetection(det, query, points, spread, heat))
    return len(cap.detections), tuple(explained)


def eigencam(activation: torch.Tensor) -> tuple[torch.Tensor, float]:
    """EigenCAM of one (C, H, W) map: its locations projected on their first principal component.

    The sign of a principal component is arbitrary; it is chosen so the map correlates positively
    with the summed activation, then negatives are clipped and the map scaled to [0, 1].
    Returns the (H, W) map and the share of variance that component holds.
    """
    import torch

    c, h, w = activation.shape
    rows = activation.reshape(c, h * w).T.double()  # one row per location
    centred = rows - rows.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    cam = centred @ vh[0]
    if torch.dot(cam, rows.sum(1) - rows.sum(1).mean()) < 0:
        cam = -cam
    cam = cam.clamp(min=0)
    cam = cam / cam.max() if cam.max() > 0 else cam
    variance = float(s[0] ** 2 / (s**2).sum()) if s.numel() and (s**2).sum() > 0 else 0.0
    return cam.reshape(h, w).float(), variance


def yolo_activation(detector: Detector, image: np.ndarray) -> YoloActivation:
    """YOLO's detections and EigenCAM over its neck outputs (the Detect head's inputs), image-sized.

    Each level's map is upsampled to the network input and the levels averaged; ultralytics' own mask
    rescaling (`scale_masks`) then undoes the letterbox, as it does for segmentation masks, and the
    result is scaled to [0, 1].
    """
    import torch
    import torch.nn.functional as F
    from ultralytics.utils.ops import scale_masks

    net = running_net(detector, image)
    seen: dict[str, Any] = {}

    def on_net(module: Any, args: tuple) -> None:
        seen["input"] = tuple(args[0].shape[2:])

    def on_detect(module: Any, args: tuple) -> None:
        seen["neck"] = list(args[0])  # Detect replaces the list's items in place: keep the inputs

    with hooked(
        lambda: net.register_forward_pre_hook(on_net),
        lambda: net.model[-1].register_forward_pre_hook(on_detect),
    ):
        ((detections, _),) = detector.predict([image])
    size = seen["input"]
    maps, variances = [], []
    for level in seen["neck"]:
        cam, variance = eigencam(level[0].detach().float().cpu())
        maps.append(F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False))
        variances.append(variance)
    mean = torch.stack(maps).mean(0)
    heat = scale_masks(mean, image.shape[:2])[0, 0].clamp(min=0)
    heat = (heat / heat.max() if heat.max() > 0 else heat).numpy()  # as EigenCAM scales the level mean
    return YoloActivation(detector.name, tuple(detections), heat, tuple(variances))


def explain_image(
    source: str,
    image: np.ndarray,
    rtdetr: Detector,
    yolo: Detector | None = None,
    objects: int = 5,
) -> ImageExplanation:
    height, width = image.shape[:2]
    total, explained = explain_rtdetr(rtdetr, image, objects)
    activation = yolo_activation(yolo, image) if yolo is not None else None
    return ImageExplanation(source, width, height, rtdetr.name, total, explained, activation)


# --- picture ----------------------------------------------------------------------------------------


def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A heat map (any range) in JET colours, blended over the image."""
    import cv2
    import numpy as np

    span = float(heat.max() - heat.min())
    norm = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colour = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.45, colour, 0.55, 0)


def _note(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    scale = max(image.shape[1] / 900, 0.4)
    y = image.shape[0] // 2
    cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return image


def _sampling_panel(image: np.ndarray, explained: Sequence[ExplainedDetection]) -> np.ndarray:
    """Boxes, and each box's sampling points: radius grows with weight; weakest drawn first."""
    import cv2
    from ultralytics.utils.plotting import colors

    out = draw_detections(image, [e.detection for e in explained])
    unit = max(image.shape[:2]) / 30  # radius of a point holding a whole head's weight
    h, w = image.shape[:2]
    for e in explained:
        colour = colors(e.detection.class_id, True)
        for p in sorted(e.sampling_points, key=lambda p: p.weight):
            if not (0 <= p.x < w and 0 <= p.y < h):
                continue  # outside the image: the module samples zeros there
            radius = max(1, round(unit * math.sqrt(p.weight)))
            cv2.circle(out, (round(p.x), round(p.y)), radius, colour, -1, cv2.LINE_AA)
            cv2.circle(out, (round(p.x), round(p.y)), radius, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _encoder_panel(image: np.ndarray, explained: Sequence[ExplainedDetection]) -> np.ndarray:
    """The explained detections' attention maps (each scaled to its maximum, then the maximum of all)."""
    import cv2
    import numpy as np

    if not explained:
        return image.copy()
    heat = np.max([e.heatmap / max(float(e.heatmap.max()), 1e-12) for e in explained], axis=0)
    out = draw_detections(_overlay(image, heat), [e.detection for e in explained])
    h, w = image.shape[:2]
    for e in explained:  # mark the query token's centre
        rows, cols = e.spread.grid
        row, col = e.spread.token
        centre = (round((col + 0.5) / cols * w), round((row + 0.5) / rows * h))
        cv2.drawMarker(out, centre, (255, 255, 255), cv2.MARKER_CROSS, max(w // 40, 8), 2)
    return out


def render_explanation(
    image: np.ndarray, result: ImageExplanation, objects: int = 5, random: Collection[str] = ()
) -> np.ndarray:
    """RT-DETR sampling points | RT-DETR encoder attention | YOLO activation (with YOLO's first
    `objects` boxes), side by side; the panels of a model named in `random` (random weights) say so."""
    import numpy as np

    def said(model: str) -> str:
        return f"{model} {RANDOM_WEIGHTS}" if model in random else model

    n = len(result.explained)
    shown = f"{n} of {result.detections_total}" if result.detections_total else "no detections"
    rtdetr = said(result.model)
    panels = [
        draw_title(_sampling_panel(image, result.explained), f"{rtdetr} decoder sampling ({shown})"),
        draw_title(_encoder_panel(image, result.explained), f"{rtdetr} encoder attention (AIFI)"),
    ]
    if not result.detections_total:
        panels = [_note(p, "no detections") for p in panels]
    if result.yolo is not None:
        yolo = draw_detections(_overlay(image, result.yolo.heatmap), result.yolo.detections[:objects])
        panels.append(draw_title(yolo, f"{said(result.yolo.model)} activation (EigenCAM)"))
    out = np.hstack(panels)
    for i in range(1, len(panels)):  # a white seam between panels
        x = i * image.shape[1]
        out[:, max(x - 1, 0) : x + 1] = 255
    return out


# --- a run ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExplainRun:
    """What `explain_images` did: the folder, and per image its picture (None when it failed)."""

    out: Path
    pictures: tuple[Path | None, ...]
    failed: int
    interrupted: bool = False
    signum: int | None = None


def picture_path(rel_path: PurePosixPath) -> PurePosixPath:
    """Where an input's picture goes: its output name (writers.output_names, unique in the run) as .jpg
    (bus.jpg -> bus.jpg, x.png -> x.jpg; x.jpg beside x.png -> x.jpg.jpg and x.png.jpg)."""
    return output_file(rel_path, ".jpg")


def _explain_one(
    item: ImageInput, image: np.ndarray, rtdetr: Detector, yolo: Detector | None, objects: int, out: Path
) -> ImageExplanation:
    """One image explained and its picture written; raises OutputError (or OSError) when the picture
    cannot be written."""
    import cv2

    result = explain_image(item.source, image, rtdetr, yolo, objects)
    rel = picture_path(item.rel_path)
    random = [d.name for d in (rtdetr, yolo) if d is not None and d.ref.untrained]
    picture = render_explanation(image, result, objects, random)
    ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OutputError("cannot encode the picture as JPEG")
    atomic_write_bytes(out / rel, buf.tobytes())
    return replace(result, picture=str(rel))


def explain_images(
    items: Sequence[ImageInput],
    rtdetr: Detector,
    out: Path,
    yolo: Detector | None = None,
    objects: int = 5,
    echo: Callable[[str], None] | None = None,
    on_image: Callable[[ImageExplanation], None] | None = None,
    url_timeout: float = DEFAULT_URL_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stop: threading.Event | None = None,
    fresh: bool = False,
) -> ExplainRun:
    """Explain each input (from `sources.discover_images`) into `out`, a prepared folder: a picture and
    an explain.jsonl line per image. Models come loaded, so `detect compare` can pass its own.

    An image that cannot be read, explained or written is that image's failure record and the run goes
    on; a full disk ends it. When `stop` is set the run ends after the image in hand. `fresh` starts
    explain.jsonl empty (a comparison replacing an earlier one) instead of adding to it."""
    pictures: list[Path | None] = []
    failed = 0
    with JsonlWriter(out / EXPLAIN_JSONL, echo=echo, fresh=fresh) as writer:
        for item in items:
            if stop is not None and stop.is_set():
                break
            try:
                image = read_image(item, url_timeout, max_pixels)
                result = _explain_one(item, image, rtdetr, yolo, objects, out)
            except (InputError, OutputError, OSError) as e:
                if isinstance(e, OSError) and e.errno in RUN_FAULTS:
                    raise OutputError(f"cannot write in {out}: {e.strerror}") from e
                reason = str(e) if isinstance(e, InputError) else f"cannot write its picture: {e}"
                result = ImageExplanation(item.source, 0, 0, rtdetr.name, 0, (), error=reason)
                pictures.append(None)
                failed += 1
            else:
                pictures.append(out / result.picture if result.picture else None)
            writer.write_record(result.to_dict(objects))
            if on_image:
                on_image(result)
    stopped = stop is not None and stop.is_set()
    signum = getattr(stop, "signum", None) if stopped else None
    return ExplainRun(out, tuple(pictures), failed, stopped, signum)


@dataclass(frozen=True)
class ExplainJob:
    """Everything `detect explain` needs, as plain values."""

    sources: tuple[str, ...]
    model: ModelRef
    compare: ModelRef | None
    options: PredictOptions
    objects: int = 5
    out: Path | None = None
    exist_ok: bool = False
    url_timeout: float = DEFAULT_URL_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    offline_fallback: bool = False  # official weights that cannot be fetched: their configs, said loudly


def run_explain(
    job: ExplainJob,
    warn: Callable[[str], None] | None = None,
    echo: Callable[[str], None] | None = None,
    on_image: Callable[[ImageExplanation], None] | None = None,
) -> ExplainRun:
    """Check the models and the plan, load the models (PyTorch: exports expose no attention), and
    explain every image into the run folder."""
    if job.model.family != "rtdetr":
        raise BadOptionError(f"--model {job.model.name} is not an RT-DETR model; explain reads its attention")
    if job.compare is not None and job.compare.family != "yolo":
        raise BadOptionError(f"--compare {job.compare.name} is not a YOLO model (or 'none')")
    if any(exported_kind(r.location) for r in (job.model, job.compare) if r is not None):
        raise BadOptionError(TORCH_ONLY)
    refuse_other_kind(job.sources, "image", "explain")
    exclude = [job.out] if job.out else []
    # Before loading: a wrong path fails fast. Each input named once, uniquely (writers.output_names).
    items = name_outputs(discover_images(job.sources, exclude=exclude))
    planned = planned_folder(job.out, "explain", job.exist_ok)
    if planned is not None:
        outputs = [planned / EXPLAIN_JSONL, *(planned / picture_path(i.rel_path) for i in items)]
        check_plan(planned, job.sources, items, outputs, record=EXPLAIN_JSONL)
    plan = Plan("torch", job.options.device, offline_fallback=job.offline_fallback)
    rtdetr = load_detector(job.model, job.options, plan, warn=warn)
    if rtdetr.family != "rtdetr":  # a .pt whose name did not say: the loaded weights decide
        raise BadOptionError(f"{job.model.location} holds a YOLO model; explain reads RT-DETR's attention")
    yolo = load_detector(job.compare, job.options, plan, warn=warn) if job.compare else None
    if yolo is not None and yolo.family != "yolo":
        raise BadOptionError(f"{yolo.ref.location} holds an RT-DETR model; --compare takes a YOLO model")
    warn_about_options([rtdetr, yolo], False, warn)
    with run_folder(job.out, "explain", job.exist_ok, record=EXPLAIN_JSONL) as out, stop_on_signals() as stop:
        return explain_images(
            items, rtdetr, out, yolo, job.objects, echo, on_image, job.url_timeout, job.max_pixels, stop
        )
