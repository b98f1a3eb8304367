from __future__ import annotations

from test_compare_duplicates import PICTURES

from detect_cli.compare.boxes import boxes_per_picture


def test_boxes_per_picture() -> None:
    c = boxes_per_picture(PICTURES, conf=0.25)
    assert (c.pictures, c.boxes, c.empty, c.mean, c.median, c.max) == (3, 6, 1, 2.0, 2.0, 4)
    assert boxes_per_picture([], conf=0.25).to_dict()["mean"] is None
