from __future__ import annotations

import numpy as np
import pytest

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


def test_side_by_side_is_as_wide_as_the_renders_with_titles_above_them() -> None:
    from detect_cli.render import side_by_side

    image = np.zeros((90, 120, 3), np.uint8)
    panels = [("a  12 ms", [Detection(0, "person", 0.9, (10.0, 10.0, 60.0, 60.0))]), ("b  30 ms", [])]
    out = side_by_side(image, panels)
    left, right = (draw_detections(image, dets) for _, dets in panels)
    band = out.shape[0] - 90
    assert 10 < band < 60 and out.shape == (90 + band, left.shape[1] + right.shape[1], 3)
    # Below the band, each panel is the render itself: the title covers none of the picture.
    assert np.array_equal(out[band:, :100], left[:, :100]) and np.array_equal(out[band:, 130:], right[:, 10:])
    assert (out[:band, :119] == 32).mean() > 0.8, "a dark band above the picture holds the title"
    assert (out[:band, :119] > 128).any(), "with the title written in light text"
    assert (out[:, 119:121] == 255).all(), "a light seam between the panels"
    assert not image.any()


def test_a_box_in_the_top_left_corner_keeps_its_label_visible() -> None:
    """The label ultralytics draws above a box at the picture's top edge stays as drawn: the title band
    sits above the picture, not over it."""
    from detect_cli.render import side_by_side

    image = np.full((200, 300, 3), 90, np.uint8)
    dets = [Detection(0, "person", 0.9, (0.0, 0.0, 150.0, 120.0))]
    out = side_by_side(image, [("a very long model title  120 ms  1 boxes", dets)])
    alone = draw_detections(image, dets)
    assert np.array_equal(out[out.shape[0] - 200 :], alone)


@pytest.mark.parametrize("shape", [(96, 128), (480, 640), (1080, 1920)])
def test_boxes_are_drawn_as_ultralytics_annotator_draws_them(shape: tuple[int, int]) -> None:
    """Pixel for pixel what ultralytics' Annotator (cv2 mode) draws: palette, dark label text on light
    colours, line width, labels kept inside the top and right edges."""
    from ultralytics.utils.plotting import Annotator, colors

    h, w = shape
    image = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
    dets = [
        Detection(c, f"class{c}", 0.5 + c / 100, (x1, y1, x2, y2))
        for c, (x1, y1, x2, y2) in enumerate(
            [
                (0, 0, w / 3, h / 3),  # at the top: label inside the box
                (w * 0.9, h / 2, w, h),  # at the right edge: label moved left
                (w / 4, h / 4, w / 2, h / 2),
                (1.6, 30.4, w / 2 + 0.7, h - 0.2),
            ]
            * 6  # 24 boxes: every colour of the palette, the dark-text ones among them
        )
    ]
    want = Annotator(image.copy(), pil=False, example="")
    for d in dets:
        want.box_label(d.xyxy, f"{d.class_name} {d.confidence:.2f}", color=colors(d.class_id, True))
    assert np.array_equal(draw_detections(image, dets), want.result())


def test_a_tracked_panel_is_drawn_with_its_ids_as_the_video_draws_them() -> None:
    """A side-by-side panel given track ids shows `#id` labels in the track colours, drawn by the one
    function the annotated video uses; a box no track holds is drawn as an untracked one."""
    from detect_cli.render import class_color, side_by_side

    image = np.zeros((90, 120, 3), np.uint8)
    dets = [
        Detection(0, "person", 0.9, (10.0, 30.0, 60.0, 80.0)),
        Detection(0, "person", 0.8, (70.0, 30.0, 110.0, 80.0)),
    ]
    out = side_by_side(image, [("a", dets, [5, None])])
    tracked = draw_detections(image, dets, track_ids=[5, None])
    assert np.array_equal(out[out.shape[0] - 90 :], tracked)
    assert not np.array_equal(tracked, draw_detections(image, dets))
    assert tuple(int(v) for v in tracked[55, 10]) == class_color(5)  # the tracked box: its track's colour
    assert tuple(int(v) for v in tracked[55, 70]) == class_color(0)  # the other: its class colour
    assert np.array_equal(draw_detections(image, dets, track_ids=[None, None]), draw_detections(image, dets))
