from __future__ import annotations

import numpy as np

from detect_cli.render import draw_detections, draw_title
from detect_cli.results import Detection


def test_boxes_are_drawn_on_a_copy() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_detections(image, [Detection(0, "person", 0.9, (40.0, 40.0, 100.0, 100.0))])
    assert not image.any(), "the input image is never modified"
    assert out.shape == image.shape
    assert out[70, 40].any() and out[40, 70].any(), "box edges are drawn"
    assert not out[70, 70].any(), "the inside of the box is left clear"
    assert not out[110, 150].any(), "nothing far from the box"


def test_no_detections_gives_the_same_picture() -> None:
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    assert np.array_equal(draw_detections(image, []), image)


def test_title_band() -> None:
    image = np.zeros((100, 400, 3), np.uint8)
    out = draw_title(image.copy(), "rtdetr-l 120 ms")
    assert out[2:20, 2:60].any() and not out[90:, :].any()
