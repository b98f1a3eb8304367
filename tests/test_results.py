from __future__ import annotations

import json

import pytest

from detect_cli.results import Detection, ImageResult, RunSummary, Speed


def _result(**kw: object) -> ImageResult:
    base = {
        "source": "a.jpg",
        "model": "m",
        "width": 4,
        "height": 3,
        "speed_ms": Speed(1.0, 2.0, 3.0),
        "detections": (Detection(0, "person", 0.9, (0.0, 0.0, 2.0, 2.0)),),
    }
    return ImageResult(**{**base, **kw})  # type: ignore[arg-type]


def test_detection_rejects_inverted_box() -> None:
    with pytest.raises(ValueError, match="out of order"):
        Detection(0, "person", 0.5, (10.0, 0.0, 5.0, 5.0))


@pytest.mark.parametrize(
    "result",
    [
        _result(),
        _result(detections=()),
        _result(width=None, height=None, speed_ms=None, detections=(), error="empty file"),
        _result(frame=7, time_s=0.28),
        _result(backend="openvino", precision="bf16"),
    ],
)
def test_round_trips_through_json(result: ImageResult) -> None:
    assert ImageResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_record_fields_are_the_documented_ones() -> None:
    d = _result().to_dict()
    assert list(d) == ["source", "width", "height", "model", "speed_ms", "detections", "error"]
    assert list(d["speed_ms"]) == ["preprocess", "inference", "postprocess"]
    assert list(d["detections"][0]) == ["class_id", "class_name", "confidence", "xyxy"]
    ran = _result(backend="onnx", precision="fp32").to_dict()
    assert list(ran) == ["source", "width", "height", "model", "backend", "precision", *list(d)[4:]]
    assert (ran["backend"], ran["precision"]) == ("onnx", "fp32")


def test_summary_counts() -> None:
    s = RunSummary()
    s.add(_result())
    s.add(
        _result(
            detections=(Detection(2, "car", 0.5, (0, 0, 1, 1)), Detection(0, "person", 0.4, (0, 0, 1, 1)))
        )
    )
    s.add(_result(error="boom", detections=(), speed_ms=None))
    assert (s.processed, s.failed, s.detections) == (2, 1, 3)
    assert s.per_class == {"person": 2, "car": 1}
    assert s.mean_ms == pytest.approx(6.0)
    assert s.failures == [("a.jpg", "boom")]


def test_summary_says_what_ran_the_inputs_as_their_records_do() -> None:
    """On Ray each worker plans its backend: the summary names what the records say, not what the
    driver process loaded."""
    s = RunSummary()
    assert s.ran_on is None
    ov = [ImageResult(f"{i}.jpg", "m", 10, 10, backend="openvino", precision="bf16") for i in range(3)]
    torch = ImageResult("t.jpg", "m", 10, 10, backend="torch", precision="fp32")
    for r in ov:
        s.add(r)
    s.add(ImageResult("bad.jpg", "m", error="not a readable image"))  # failed inputs ran nothing
    assert s.ran_on == "openvino, bf16"
    s.add(torch)
    assert s.ran_on == "openvino, bf16: 3; torch, fp32: 1"
    s.retract(torch)  # its outputs could not be written: it is not counted
    assert s.ran_on == "openvino, bf16"
