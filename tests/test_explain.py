"""`detect explain`: the captured attention is exactly what the model computed, and the outputs are there.

Seeded YAML-built models (random weights): the pictures mean nothing, the mechanics are exact. The
seeded RT-DETR's cross-attention starts with all-zero weight matrices (its init), which would make
uniform attention and query-independent offsets; `_stir` gives them random values so the checks bite.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from typer.testing import CliRunner

from detect_cli import explain as ex
from detect_cli.cli import app
from detect_cli.models import Detector, PredictOptions, load, resolve
from detect_cli.sources import discover_images

IMGSZ = 96  # three RT-DETR levels of 12x12, 6x6, 3x3 tokens; AIFI sees the 3x3 one
runner = CliRunner()


def _detector(path: Path, family: str, conf: float = 0.001, imgsz: int = IMGSZ) -> Detector:
    return load(resolve(str(path), family), PredictOptions(conf=conf, imgsz=imgsz, device="cpu"))  # type: ignore[arg-type]


def _stir(detector: Detector, seed: int = 1) -> None:
    """Random (seeded) weights for the sampling-offset and attention-weight layers of every decoder layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in detector.model.model.model[-1].decoder.layers:
            for lin in (layer.cross_attn.sampling_offsets, layer.cross_attn.attention_weights):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.05)


@pytest.fixture
def image(tmp_path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(make_image(tmp_path / "x.jpg", seed=5, size=(90, 120))))


@pytest.fixture(scope="module")
def stirred(rtdetr_pt: Path) -> Detector:
    detector = _detector(rtdetr_pt, "rtdetr")
    _stir(detector)
    return detector


def _hook_count(net: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def test_sampling_locations_equal_an_independent_recomputation(
    stirred: Detector, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the hooked inputs (query, reference boxes) and the layer's parameters, recomputed in numpy
    with loops over heads, levels and points; and equal to what the model passed to its sampler."""
    from ultralytics.nn.modules import transformer

    used: list[tuple[torch.Tensor, torch.Tensor]] = []
    sampler = transformer.multi_scale_deformable_attn_pytorch

    def spy(value, shapes, locations, weights):  # type: ignore[no-untyped-def]
        used.append((locations.clone(), weights.clone()))
        return sampler(value, shapes, locations, weights)

    monkeypatch.setattr(transformer, "multi_scale_deformable_attn_pytorch", spy)
    cap = ex.capture_rtdetr(stirred, image).decoder
    net = ex.running_net(stirred, image)
    head = net.model[-1]
    cross = head.decoder.layers[head.decoder.eval_idx].cross_attn
    heads, levels, points = cross.n_heads, cross.n_levels, cross.n_points
    assert cap.shapes == ((12, 12), (6, 6), (3, 3))

    w_off = cross.sampling_offsets.weight.double().numpy()
    b_off = cross.sampling_offsets.bias.double().numpy()
    w_att = cross.attention_weights.weight.double().numpy()
    b_att = cross.attention_weights.bias.double().numpy()
    q = cap.query.astype(np.float64)
    offsets = (q @ w_off.T + b_off).reshape(len(q), heads, levels, points, 2)
    logits = (q @ w_att.T + b_att).reshape(len(q), heads, levels * points)
    expected_w = np.exp(logits - logits.max(-1, keepdims=True))
    expected_w = (expected_w / expected_w.sum(-1, keepdims=True)).reshape(len(q), heads, levels, points)
    expected_loc = np.empty_like(offsets)
    for i, (cx, cy, w, h) in enumerate(cap.reference.astype(np.float64)):
        for hd in range(heads):
            for lv in range(levels):
                for p in range(points):
                    dx, dy = offsets[i, hd, lv, p]
                    expected_loc[i, hd, lv, p] = (cx + dx / points * w * 0.5, cy + dy / points * h * 0.5)
    np.testing.assert_allclose(cap.locations, expected_loc, atol=1e-5)
    np.testing.assert_allclose(cap.weights, expected_w, atol=1e-6)
    assert np.ptp(cap.weights) > 0.01  # not the uniform attention of an untouched init

    # The decoder runs its layers up to eval_idx; the box-making layer is the last sampler call.
    locations, weights = used[head.decoder.eval_idx]
    n = len(q)
    assert np.array_equal(cap.locations, locations[0].view(n, heads, levels, points, 2).numpy())
    assert np.array_equal(cap.weights, weights[0].view(n, heads, levels, points).numpy())


def test_attention_weights_sum_to_one_per_query_and_head(stirred: Detector, image: np.ndarray) -> None:
    cap = ex.capture_rtdetr(stirred, image).decoder
    np.testing.assert_allclose(cap.weights.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    assert (cap.weights > 0).all()
    _, explained = ex.explain_rtdetr(stirred, image, objects=3)
    for e in explained:
        assert len(e.sampling_points) == cap.weights[0].size  # all heads x levels x points
        assert sum(p.weight for p in e.sampling_points) == pytest.approx(cap.weights.shape[1], abs=1e-4)


def test_zeroed_offsets_put_every_point_on_its_reference_box_centre(
    rtdetr_pt: Path, image: np.ndarray
) -> None:
    detector = _detector(rtdetr_pt, "rtdetr")
    _stir(detector)
    net = ex.running_net(detector, image)
    head = net.model[-1]
    offsets = head.decoder.layers[head.decoder.eval_idx].cross_attn.sampling_offsets
    with torch.no_grad():  # weight and bias: the bias holds the init's fixed ring of offsets
        offsets.weight.zero_()
        offsets.bias.zero_()
    cap = ex.capture_rtdetr(detector, image)
    centres = np.broadcast_to(cap.decoder.reference[:, None, None, None, :2], cap.decoder.locations.shape)
    assert np.array_equal(cap.decoder.locations, centres)
    assert np.ptp(cap.decoder.reference[:, :2]) > 0  # the centres differ per query: a real check
    h, w = image.shape[:2]
    _, explained = ex.explain_rtdetr(detector, image, objects=2)
    for e in explained:
        cx, cy = cap.decoder.reference[e.query, :2]
        assert {(round(p.x, 3), round(p.y, 3)) for p in e.sampling_points} == {
            (round(float(cx * w), 3), round(float(cy * h), 3))
        }


def test_kept_detections_map_to_the_queries_that_produced_them(stirred: Detector, image: np.ndarray) -> None:
    """Each detection's box and score are its query's own decoder output (the predictor's top-k)."""
    cap = ex.capture_rtdetr(stirred, image)
    h, w = image.shape[:2]
    assert cap.detections and len(cap.queries) == len(cap.detections)
    for det, query in zip(cap.detections, cap.queries, strict=True):
        cx, cy, bw, bh = cap.decoder.boxes[query]
        expected = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
        np.testing.assert_allclose(det.xyxy, expected, atol=1e-3)
        assert det.confidence == pytest.approx(float(cap.decoder.scores[query, det.class_id]), abs=1e-6)
    assert len(set(cap.queries)) > 1


def test_encoder_attention_rows_sum_to_one(stirred: Detector, image: np.ndarray) -> None:
    enc = ex.capture_rtdetr(stirred, image).encoder
    rows, cols = enc.grid
    assert (rows, cols) == (IMGSZ // 32, IMGSZ // 32)
    assert enc.attention.shape == (rows * cols, rows * cols)
    np.testing.assert_allclose(enc.attention.sum(1), 1.0, atol=1e-5)
    assert (enc.attention >= 0).all()


@pytest.mark.parametrize(
    ("token", "xyxy", "distance", "outside"),
    [
        # one-hot attention on the query token itself: no distance, inside the box
        (4, (0, 0, 90, 90), 0.0, 0.0),
        # on the token to its right (one cell = 30 px): 30 px away, outside a box around the centre only
        (5, (40, 40, 50, 50), 30.0, 1.0),
    ],
)
def test_attention_spread(token: int, xyxy: tuple[float, ...], distance: float, outside: float) -> None:
    attention = np.zeros((9, 9), np.float32)
    attention[4, token] = 1.0  # token 4 is the centre of a 3x3 grid over a 90x90 image
    query, spread = ex.attention_spread(ex.EncoderCapture((3, 3), attention), xyxy, 90, 90)
    assert query == 4 and spread.token == (1, 1)
    assert spread.mean_distance_px == pytest.approx(distance)
    assert spread.share_outside_box == pytest.approx(outside)


def test_eigencam_finds_the_dominant_spatial_pattern() -> None:
    g = torch.Generator().manual_seed(0)
    pattern = torch.zeros(8, 10)
    pattern[2:5, 6:9] = 1.0
    channels = torch.randn(16, generator=g).abs() + 0.5
    act = channels[:, None, None] * pattern + 0.01 * torch.randn(16, 8, 10, generator=g)
    cam, variance = ex.eigencam(act)
    assert cam.shape == (8, 10) and cam.max() == pytest.approx(1.0) and cam.min() >= 0
    assert cam[2:5, 6:9].min() > 0.9 and cam[pattern == 0].max() < 0.1
    assert variance > 0.9


def test_heat_maps_have_the_image_size(stirred: Detector, yolo_pt: Path, image: np.ndarray) -> None:
    result = ex.explain_image("x.jpg", image, stirred, _detector(yolo_pt, "yolo"), objects=2)
    assert len(result.explained) == 2
    for e in result.explained:
        assert e.heatmap.shape == image.shape[:2]
        assert e.heatmap.min() >= 0 and e.heatmap.max() <= 1.0 + 1e-6
    assert result.yolo is not None and result.yolo.heatmap.shape == image.shape[:2]
    assert 0 <= result.yolo.heatmap.min() and result.yolo.heatmap.max() == pytest.approx(1.0, abs=1e-3)
    assert len(result.yolo.explained_variance) == 3  # one per neck output


def test_detections_with_hooks_equal_detections_without(
    rtdetr_pt: Path, yolo_pt: Path, image: np.ndarray
) -> None:
    for path, family, explain in (
        (rtdetr_pt, "rtdetr", lambda d: ex.capture_rtdetr(d, image).detections),
        (yolo_pt, "yolo", lambda d: ex.yolo_activation(d, image).detections),
    ):
        detector = _detector(path, family, conf=0.0)  # the seeded YOLO's scores are all below 0.001
        ((plain, _),) = detector.predict([image])
        net = ex.running_net(detector, image)
        before = _hook_count(net)
        assert explain(detector) == plain and plain, family
        assert _hook_count(net) == before, f"{family}: hooks left behind"
        ((again, _),) = detector.predict([image])
        assert again == plain


def test_hooks_are_removed_when_the_model_call_fails(stirred: Detector, image: np.ndarray) -> None:
    net = ex.running_net(stirred, image)
    before = _hook_count(net)
    with pytest.raises(ValueError):
        ex.capture_rtdetr(stirred, np.zeros((0, 0, 3), np.uint8))
    assert _hook_count(net) == before


def test_an_image_without_detections_gives_a_picture_and_a_record(stirred: Detector, tmp_path: Path) -> None:
    import cv2

    make_image(tmp_path / "in" / "x.png", seed=3, size=(64, 80))
    nothing = Detector(stirred.ref, stirred.model, replace(stirred.options, conf=1.0))  # no score exceeds 1
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "in" / "y.jpg").write_bytes(b"not a picture")
    run = ex.explain_images(discover_images([str(tmp_path / "in")]), nothing, out, yolo=None)
    assert run.failed == 1 and run.pictures == (out / "in" / "x.jpg", None)
    picture = cv2.imread(str(out / "in" / "x.jpg"))
    assert picture.shape == (64, 80 * 2, 3)  # sampling | encoder panels, no YOLO panel asked for
    record, unreadable = [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]
    assert unreadable["source"].endswith("y.jpg") and unreadable["error"]
    assert record["count"] == 0 and record["note"] == "no detections" and record["detections"] == []
    assert record["picture"] == "in/x.jpg"


def test_inputs_that_would_share_a_picture_get_one_each(stirred: Detector, tmp_path: Path) -> None:
    """x.jpg beside x.png, and y.jpg beside Y.JPG (one picture on a case-insensitive file system): each
    input its own picture, named by the run's output names, and each record points to its own."""
    import cv2

    from detect_cli.sources import name_outputs

    sizes = {"x.jpg": (64, 64), "x.png": (64, 96), "y.jpg": (96, 64), "Y.JPG": (96, 96)}
    for name, size in sizes.items():
        make_image(tmp_path / "in" / name, size=size)
    out = tmp_path / "out"
    out.mkdir()
    items = name_outputs(discover_images([str(tmp_path / "in")]))
    run = ex.explain_images(items, stirred, out, yolo=None)
    records = [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]
    pictures = [r["picture"] for r in records]
    assert run.failed == 0 and len({p.casefold() for p in pictures}) == 4
    for r in records:
        h, w = sizes[Path(r["source"]).name]
        assert cv2.imread(str(out / r["picture"])).shape == (h, 2 * w, 3), r


def test_cli_writes_pictures_and_records(rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path) -> None:
    import cv2

    make_image(tmp_path / "in" / "a.jpg", seed=1, size=(72, 96))
    make_image(tmp_path / "in" / "b.png", seed=2, size=(60, 60))
    out = tmp_path / "out"
    args = ["explain", str(tmp_path / "in"), "-m", str(rtdetr_pt), "--compare", str(yolo_pt)]
    args += ["--conf", "0.0", "--imgsz", "64", "--device", "cpu", "-o", str(out), "--objects", "2"]
    result = runner.invoke(app, [*args, "--json", "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]
    assert [json.loads(line) for line in result.stdout.splitlines()] == records
    assert [Path(r["source"]).name for r in records] == ["a.jpg", "b.png"]
    for r, (h, w) in zip(records, [(72, 96), (60, 60)], strict=True):
        assert cv2.imread(str(out / r["picture"])).shape == (h, 3 * w, 3)
        assert r["count"] > 0 and len(r["detections"]) == 2
        det = r["detections"][0]
        assert {"xyxy", "class_id", "class_name", "confidence", "query", "attention_spread"} <= set(det)
        assert len(det["sampling_points"]) == 8 * 3 * 4  # heads x levels x points of rtdetr-l
        assert r["yolo"]["count"] > 0 and len(r["yolo"]["eigencam_explained_variance"]) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "onnx"], "explain needs --backend torch"),
        (["--backend", "openvino"], "explain needs --backend torch"),
        (["-m", "{tmp}/model.onnx"], "explain needs --backend torch"),
        (["-m", "yolo11n.yaml"], "is not an RT-DETR model"),
        (["--compare", "rtdetr-l.yaml"], "is not a YOLO model"),
        (["--imgsz", "100"], "not a multiple of 32"),
    ],
)
def test_cli_errors_are_one_line(extra: list[str], message: str, tmp_path: Path) -> None:
    src = make_image(tmp_path / "x.jpg")
    (tmp_path / "model.onnx").write_bytes(b"not run: refused before loading")
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    result = runner.invoke(app, ["explain", str(src), "--device", "cpu", "-o", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_cli_missing_input_fails_before_any_model_loads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(tmp_path / "missing.jpg"), "--device", "cpu"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no inputs found") and "weights" not in result.stderr


def test_cli_exist_ok_replaces_an_earlier_explain_run_and_only_it(rtdetr_pt: Path, tmp_path: Path) -> None:
    """--exist-ok means "replace", as for every other command: a second run into the folder starts
    explain.jsonl empty (it appended to the first run's lines) and removes the pictures the first run
    listed (they stayed beside the new ones), never a file explain did not write."""
    make_image(tmp_path / "in" / "a.jpg", seed=1, size=(64, 64))
    make_image(tmp_path / "in" / "b.png", seed=2, size=(64, 64))
    out = tmp_path / "out"
    mine = {out / "notes.txt": b"mine", out / "in" / "mine.jpg": b"also mine"}
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def explain(*sources: Path) -> list[dict]:  # type: ignore[type-arg]
        args = ["explain", *map(str, sources), "-m", str(rtdetr_pt), "--compare", "none", "--conf", "0.0"]
        result = runner.invoke(app, [*args, "--imgsz", "64", "--device", "cpu", "-o", str(out), "--exist-ok"])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]

    first = explain(tmp_path / "in")
    assert [Path(r["source"]).name for r in first] == ["a.jpg", "b.png"]
    second = explain(tmp_path / "in" / "b.png")
    assert [Path(r["source"]).name for r in second] == ["b.png"]
    pictures = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg") if p not in mine)
    assert pictures == [second[0]["picture"]] == ["b.jpg"]
    assert {path: path.read_bytes() for path in mine} == mine
