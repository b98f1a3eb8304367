"""Where RT-DETR looked for each detection (torch backend only): one run with forward hooks on
- the cross-attention (`MSDeformAttn`) of the decoder layer whose output gives the boxes: its input
  query and reference boxes, and the outputs of its `sampling_offsets` and `attention_weights`
  layers, from which the sampling locations and softmaxed weights follow by the module's own formula;
- the AIFI encoder's `nn.MultiheadAttention`: its attention weights, averaged over heads;
- the decoder head: its per-query scores, to know which query produced each kept box (the head keeps
  the top (query, class) pairs by score; the predictor then drops those at or below --conf).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError
from detect_cli.models import Detector
from detect_cli.results import Detection

if TYPE_CHECKING:
    import numpy as np
    import torch
from detect_cli.explain.hooks import hooked, running_net
from detect_cli.explain.results import AttentionSpread, ExplainedDetection, SamplingPoint


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
