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
        _result(backend="onnx", precision="fp32", weights_sha256="ab" * 32),
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


GOOD = _result(path="/p/a.jpg", size=10, mtime_ns=5, backend="onnx", precision="fp32").to_dict()
DET = GOOD["detections"][0]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"detections": None}, "'detections' is None"),
        ({"detections": {"0": DET}}, "'detections' is"),
        ({"path": ["a.jpg"]}, "'path' is"),
        ({"source": None}, "'source' is None"),
        ({"model": 3}, "'model' is 3"),
        ({"size": "10"}, "'size' is"),
        ({"mtime_ns": True}, "'mtime_ns' is True"),
        ({"width": -1}, "'width' is -1"),
        ({"error": 0}, "'error' is 0"),
        ({"time_s": float("inf")}, "'time_s' is inf"),
        ({"speed_ms": {"preprocess": 1}}, "'speed_ms' is"),
        ({"speed_ms": {"preprocess": 1, "inference": float("nan"), "postprocess": 1}}, "'speed_ms' is"),
        ({"detections": [None]}, "a detection is None"),
        ({"detections": [{**DET, "class_id": "0"}]}, "class is '0'"),
        ({"detections": [{**DET, "class_id": 1.5}]}, "class is 1.5"),
        ({"detections": [{**DET, "class_name": None}]}, "class is 0 None"),
        ({"detections": [{**DET, "confidence": float("nan")}]}, "confidence is nan"),
        ({"detections": [{**DET, "xyxy": [1, 2, 3]}]}, "box is"),
        ({"detections": [{**DET, "xyxy": [0, 0, "2", 2]}]}, "box is"),
        ({"detections": [{**DET, "xyxy": [5, 0, 1, 2]}]}, "out of order"),
        ({"detections": [{**DET, "xyxy": [0, 0, float("inf"), 2]}]}, "box is"),
    ],
)
def test_a_record_of_the_wrong_shape_is_refused_by_the_one_check(change: dict, why: str) -> None:
    """Each line as it would be read back from a results.jsonl (JSON text, NaN and Infinity included)."""
    from detect_cli.results import BadRecord, check_record

    line = json.loads(json.dumps({**GOOD, **change}))
    with pytest.raises(BadRecord, match=why):
        check_record(line)
    with pytest.raises(BadRecord):
        ImageResult.from_dict(line)


@pytest.mark.parametrize("missing", ["source", "model"])
def test_a_record_missing_a_field_is_refused(missing: str) -> None:
    from detect_cli.results import BadRecord, check_record

    with pytest.raises(BadRecord, match=f"'{missing}' is None"):
        check_record({k: v for k, v in GOOD.items() if k != missing})


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_a_line_that_is_not_an_object_is_refused(value: object) -> None:
    from detect_cli.results import BadRecord, check_record

    with pytest.raises(BadRecord, match="not a JSON object"):
        check_record(value)
