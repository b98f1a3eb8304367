"""YOLO's EigenCAM: the first principal component of each neck output (the Detect head's inputs),
upsampled and averaged into one image-sized map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from detect_cli.models import Detector

if TYPE_CHECKING:
    import numpy as np
    import torch
from detect_cli.explain.hooks import hooked, running_net
from detect_cli.explain.results import YoloActivation


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
