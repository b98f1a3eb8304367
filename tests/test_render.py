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


def test_side_by_side_is_as_wide_as_the_renders() -> None:
    from detect_cli.render import side_by_side

    image = np.zeros((90, 120, 3), np.uint8)
    panels = [("a  12 ms", [Detection(0, "person", 0.9, (10.0, 10.0, 60.0, 60.0))]), ("b  30 ms", [])]
    out = side_by_side(image, panels)
    left, right = (draw_detections(image, dets, title) for title, dets in panels)
    assert out.shape == (90, left.shape[1] + right.shape[1], 3)
    assert np.array_equal(out[:, :100], left[:, :100]) and np.array_equal(out[:, 130:], right[:, 10:])
    assert (out[:, 119:121] == 255).all(), "a light seam between the panels"
    assert not image.any()
