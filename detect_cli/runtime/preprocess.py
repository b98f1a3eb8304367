"""What ultralytics' predictor does to a picture before the network, in OpenCV and NumPy: its LetterBox
for a fixed square input (RT-DETR stretched to the square, YOLO scaled to fit and padded with grey 114,
centred), and the conversion to the network's input (BGR → RGB, 0..1, NCHW float32), in NumPy for ONNX Runtime
and compiled into the graph for OpenVINO (`uint8_bgr_input`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PAD = 114  # ultralytics' letterbox grey


@dataclass(frozen=True, slots=True)
class Fit:
    """Where the picture sits in the model's square input: x' = x * gain_x + pad_x (and y)."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int


def letterbox(image: np.ndarray, size: int, stretch: bool) -> tuple[np.ndarray, Fit]:
    """ultralytics' LetterBox(size, auto=False, scale_fill=stretch, center=True) on one BGR picture."""
    import cv2

    h, w = image.shape[:2]
    if stretch:
        resized = (
            image
            if (w, h) == (size, size)
            else cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        )
        return resized, Fit(size / w, size / h, 0, 0)
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD, PAD, PAD))
    return padded, Fit(new_w / w, new_h / h, left, top)


def to_input(square: np.ndarray) -> np.ndarray:
    """A letterboxed BGR uint8 picture as the network's input: 1x3xHxW float32 RGB in 0..1."""
    import numpy as np

    chw = np.ascontiguousarray(square[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)
    np.divide(chw, np.float32(255), out=chw)  # in place: one array per picture, as torch's div_
    return chw[None]


def uint8_bgr_input(model: Any) -> Any:
    """An OpenVINO model whose input is the letterboxed picture itself (1xHxWx3 uint8 BGR): the
    conversion `to_input` does in NumPy (RGB, 0..1, NCHW) becomes the graph's first step, fused by
    the compiler, and a picture in flight is a quarter the bytes. Outputs are bit-equal to feeding
    `to_input`'s tensor (tests/test_runtime.py)."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()
