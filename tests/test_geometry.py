"""One IoU and one matcher, shared by compare's agreement and the backends' parity check."""

from __future__ import annotations

import numpy as np
import pytest

from detect_cli.geometry import Match, box_iou, clip_detections, match
from detect_cli.results import Detection

BOX = (10.0, 10.0, 50.0, 50.0)
HALF = (30.0, 10.0, 70.0, 50.0)  # BOX moved right by half its width: 800 / (1600 + 1600 - 800) = 1/3
FAR = (60.0, 60.0, 90.0, 90.0)


def det(cls: str, conf: float, box: tuple[float, float, float, float], class_id: int = 0) -> Detection:
    return Detection(class_id, cls, conf, box)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (BOX, BOX, 1.0),  # identical
        (BOX, FAR, 0.0),  # disjoint
        (BOX, (50.0, 10.0, 90.0, 50.0), 0.0),  # touching edges
        (BOX, HALF, 1 / 3),  # a known overlap
        ((20.0, 20.0, 40.0, 40.0), BOX, 0.25),  # one inside the other
        ((5.0, 5.0, 5.0, 5.0), (5.0, 5.0, 5.0, 5.0), 0.0),  # empty boxes: no union, no overlap
    ],
)
def test_box_iou_table(a: tuple[float, ...], b: tuple[float, ...], expected: float) -> None:
    iou = box_iou(np.array([a]), np.array([b]))
    assert iou.shape == (1, 1) and iou[0, 0] == pytest.approx(expected)
    assert box_iou(np.array([b]), np.array([a]))[0, 0] == pytest.approx(expected)


def test_box_iou_against_a_crowd_divides_by_the_box_alone() -> None:
    crowd = np.array([[0.0, 0.0, 100.0, 100.0]])
    box = np.array([[0.0, 0.0, 10.0, 20.0], [50.0, 0.0, 150.0, 100.0]])
    from pycocotools import mask

    xywh = [[0, 0, 10, 20], [50, 0, 100, 100]]
    for flag in (True, False):
        expected = mask.iou(xywh, [[0, 0, 100, 100]], [int(flag)])
        np.testing.assert_allclose(box_iou(box, crowd, np.array([flag])), expected)
    assert box_iou(box, crowd, np.array([True]))[:, 0].tolist() == [1.0, 0.5]


def test_box_iou_is_every_box_against_every_box() -> None:
    assert box_iou(np.array([BOX, FAR]), np.array([BOX, HALF, FAR])).shape == (2, 3)


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "expected"),
    [
        ([det("car", 0.9, BOX)], [det("car", 0.8, BOX)], {}, [Match(0, 0, 1.0)]),
        ([det("car", 0.9, BOX)], [det("bus", 0.8, BOX)], {}, []),  # class mismatch: never matched
        ([det("car", 0.9, BOX)], [det("CAR", 0.8, BOX)], {}, [Match(0, 0, 1.0)]),  # names, case aside
        ([det("car", 0.9, BOX)], [det("car", 0.8, HALF)], {}, []),  # IoU 1/3 < 0.5
        ([det("car", 0.9, BOX)], [det("car", 0.8, HALF)], {"iou_threshold": 0.3}, [Match(0, 0, 1 / 3)]),
        (  # one-to-one: the most confident pair first, the other box of A stays single
            [det("car", 0.5, BOX), det("car", 0.9, BOX)],
            [det("car", 0.8, BOX)],
            {},
            [Match(1, 0, 1.0)],
        ),
        (  # by class id when asked: the names differ, the ids agree
            [det("car", 0.9, BOX, class_id=2)],
            [det("auto", 0.9, BOX, class_id=2)],
            {"same_class": lambda d: d.class_id},
            [Match(0, 0, 1.0)],
        ),
        ([], [det("car", 0.8, BOX)], {}, []),
        ([], [], {}, []),
    ],
)
def test_match_table(a: list[Detection], b: list[Detection], kwargs: dict, expected: list[Match]) -> None:
    got = match(a, b, **kwargs)
    assert [(m.a, m.b) for m in got] == [(m.a, m.b) for m in expected]
    assert [m.iou for m in got] == pytest.approx([m.iou for m in expected])


def test_pairs_lead_by_combined_confidence_and_a_reference_by_its_own() -> None:
    """A's confident box overlaps B's two boxes; the confident one of B overlaps it less."""
    a = [det("car", 0.9, BOX), det("car", 0.2, (12.0, 10.0, 52.0, 50.0))]
    b = [det("car", 0.3, BOX), det("car", 0.9, (14.0, 10.0, 54.0, 50.0))]
    # Combined confidence: A0 with B1 (1.8) first, then A1 with B0 (0.5).
    assert [(m.a, m.b) for m in match(a, b)] == [(0, 1), (1, 0)]
    # A as the reference: A0 takes the box it overlaps most (B0), then A1 the one left.
    assert [(m.a, m.b) for m in match(a, b, lead="a")] == [(0, 0), (1, 1)]


def test_clip_detections_keeps_boxes_inside_the_image() -> None:
    [d] = clip_detections([det("car", 0.9, (-5.0, 10.0, 70.0, 120.0))], 64, 100)
    assert d.xyxy == (0.0, 10.0, 64, 100)
