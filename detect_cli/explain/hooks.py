"""The network ultralytics' predictor runs, and forward hooks on it that are always removed: what the
model returns is not changed by them. Exported models run as one compiled graph, so PyTorch only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError
from detect_cli.models import Detector

if TYPE_CHECKING:
    import numpy as np
    import torch


TORCH_ONLY = (
    "explain needs --backend torch: exported models (ONNX, OpenVINO) run as one compiled graph "
    "whose attention cannot be read"
)


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
