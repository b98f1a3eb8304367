from __future__ import annotations

from types import SimpleNamespace

import pytest

from detect_cli.compare.agreement import match_detections, shared_class_names
from detect_cli.errors import BadOptionError
from detect_cli.results import Detection


def det(cls: str, conf: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(0, cls, conf, box)


BOX = (10.0, 10.0, 50.0, 50.0)
NEAR = (12.0, 12.0, 52.0, 52.0)  # IoU with BOX ≈ 0.82
FAR = (30.0, 30.0, 70.0, 70.0)  # IoU with BOX ≈ 0.14


@pytest.mark.parametrize(
    ("a", "b", "matched", "only_a", "only_b"),
    [
        ([det("car", 0.9, BOX)], [det("car", 0.8, BOX)], 1, 0, 0),
        ([det("car", 0.9, BOX)], [det("car", 0.8, NEAR)], 1, 0, 0),
        ([det("car", 0.9, BOX)], [det("car", 0.8, FAR)], 0, 1, 1),
        ([det("car", 0.9, BOX)], [det("bus", 0.8, BOX)], 0, 1, 1),  # same place, other class
        ([det("car", 0.9, BOX), det("car", 0.5, BOX)], [det("car", 0.8, BOX)], 1, 1, 0),  # one-to-one
        ([], [det("car", 0.8, BOX)], 0, 0, 1),
        ([], [], 0, 0, 0),
    ],
)
def test_matching_table(a, b, matched: int, only_a: int, only_b: int) -> None:  # type: ignore[no-untyped-def]
    m = match_detections(a, b)
    assert (len(m.matched), len(m.only_a), len(m.only_b)) == (matched, only_a, only_b)
    flipped = match_detections(b, a)
    assert (len(flipped.matched), len(flipped.only_a), len(flipped.only_b)) == (matched, only_b, only_a)


def test_matching_takes_the_most_confident_pair_first() -> None:
    a = [det("car", 0.3, NEAR), det("car", 0.9, BOX)]
    b = [det("car", 0.9, BOX)]
    m = match_detections(a, b)
    assert m.matched == (("car", 1.0),) and m.only_a == (a[0],)


def test_matching_ignores_classes_outside_the_shared_ones() -> None:
    m = match_detections(
        [det("car", 0.9, BOX), det("cat", 0.9, BOX)], [det("car", 0.9, BOX)], 0.5, frozenset({"car"})
    )
    assert len(m.matched) == 1 and m.only_a == () and m.only_b == ()


def _fake(name: str, names: list[str]) -> SimpleNamespace:
    return SimpleNamespace(name=name, names=dict(enumerate(names)))


def test_differing_classes_are_compared_on_shared_names() -> None:
    shared, notes = shared_class_names(
        [_fake("a", ["person", "car", "dog"]), _fake("b", ["Car", "person", "cat"])]
    )
    assert shared == ("person", "car")
    assert notes == [
        "the models' classes differ (a has 3, b has 3): agreement and accuracy use the 2 class names "
        "they share"
    ]
    assert shared_class_names([_fake("a", ["x"]), _fake("b", ["x"])]) == (("x",), [])
    with pytest.raises(BadOptionError, match="share no class names"):
        shared_class_names([_fake("a", ["person"]), _fake("b", ["cat"])])
