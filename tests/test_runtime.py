"""The torch-free runner of cached exports: each step against ultralytics' own on the same inputs, the
whole detector against ultralytics' predict on the same export file, throughput mode, the compiled-model
cache, and a cached run that never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CONF, SMALL_IMGSZ

from detect_cli import backends, runtime
from detect_cli.backends import loading
from detect_cli.models import PredictOptions, resolve

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
needs = {
    b: pytest.mark.skipif(not backends.installed(b), reason=f"{b} not installed") for b in backends.EXPORTED
}


# --- each step against ultralytics' -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (37, 91), (480, 640), (1080, 810), (64, 64), (7, 300)])
@pytest.mark.parametrize("stretch", [False, True])
def test_letterbox_equals_ultralytics(shape: tuple[int, int], stretch: bool) -> None:
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(sum(shape)).integers(0, 255, (*shape, 3), dtype=np.uint8)
    want = LetterBox((SMALL_IMGSZ, SMALL_IMGSZ), auto=False, scale_fill=stretch)(image=image)
    got, fit = runtime.letterbox(image, SMALL_IMGSZ, stretch)
    assert got.shape == want.shape and np.array_equal(got, want)
    # The picture's far corner lands where ultralytics' scale_boxes says (it recomputes the same gains).
    from ultralytics.utils.ops import scale_boxes

    corner = np.array([[0, 0, shape[1], shape[0]]], np.float32)
    gains = np.array([fit.gain_x, fit.gain_y] * 2, np.float32)
    placed = corner * gains + np.array([fit.pad_x, fit.pad_y] * 2, np.float32)
    if not stretch:
        back = scale_boxes((SMALL_IMGSZ, SMALL_IMGSZ), placed.copy(), shape)
        np.testing.assert_allclose(back, corner, atol=1e-3)
    np.testing.assert_allclose(runtime.unletterbox(placed.astype(np.float32), fit, shape), corner, atol=1e-3)


def test_input_tensor_equals_ultralytics_preprocess() -> None:
    import torch

    square = np.random.default_rng(0).integers(0, 255, (SMALL_IMGSZ, SMALL_IMGSZ, 3), dtype=np.uint8)
    want = torch.from_numpy(square)[None].permute(0, 3, 1, 2).contiguous().flip(1).float().div_(255)
    assert np.array_equal(runtime.to_input(square), want.numpy())


@pytest.mark.parametrize("seed", range(4))
def test_nms_equals_torchvision(seed: int) -> None:
    import torch
    from torchvision.ops import batched_nms, nms

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (300, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    classes = rng.integers(0, 3, 300)
    for iou in (0.3, 0.5, 0.7):
        want = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
        assert np.array_equal(runtime.nms(boxes, scores, iou), want)
        assert np.array_equal(runtime.nms(boxes, scores, iou, limit=7), want[:7])  # stops early, same boxes
        want = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), iou)
        assert np.array_equal(runtime.batched_nms(boxes, scores, classes, iou), want.numpy())


def test_nms_on_dense_clusters_and_empty_input_equals_torchvision() -> None:
    import torch
    from torchvision.ops import nms

    rng = np.random.default_rng(9)
    xy = rng.uniform(0, 30, (2000, 2)).astype(np.float32)  # crowded: most boxes are suppressed
    boxes = np.concatenate([xy, xy + rng.uniform(20, 40, (2000, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0, 1, 2000).astype(np.float32)
    scores[:50] = 0.5  # ties keep torchvision's (stable) order
    want = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert 1 < len(want) < 200
    assert np.array_equal(runtime.nms(boxes, scores, 0.5), want)
    assert np.array_equal(runtime.nms(boxes, scores, 0.5, limit=5), want[:5])
    assert runtime.nms(boxes[:0], scores[:0], 0.5).shape == (0,)


@pytest.mark.parametrize("limit", [None, 1, 63, 64, 65, 128, 300])
def test_nms_in_blocks_equals_torchvision_across_block_edges(limit: int | None) -> None:
    """Boxes kept in one block suppress boxes of the next ones: 3,000 boxes in crowded clusters (with
    score ties), far more than a block, and limits on either side of the first block's size."""
    import torch
    from torchvision.ops import nms

    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 400, (3000, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(10, 90, (3000, 2)).astype(np.float32)], 1)
    scores = np.round(rng.uniform(0, 1, 3000), 3).astype(np.float32)  # many ties
    assert runtime.decode.FIRST_BLOCK < 300 and runtime.decode.MAX_BLOCK < 3000
    for iou in (0.3, 0.7):
        want = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
        assert len(want) > 300  # the limits stop inside the kept boxes, not after them
        assert np.array_equal(runtime.nms(boxes, scores, iou, limit), want[:limit])


@pytest.mark.parametrize(("max_det", "classes"), [(20, None), (300, None), (300, (0, 3, 7))])
def test_yolo_decoding_equals_ultralytics_non_max_suppression(
    max_det: int, classes: tuple[int, ...] | None
) -> None:
    """A full-size YOLO output (84 x 8,400 anchors), most above `conf`: the candidates, the best class,
    class-wise NMS and `max_det` as ultralytics' own."""
    import torch
    from ultralytics.utils.nms import non_max_suppression

    rng = np.random.default_rng(5)
    output = np.empty((84, 8400), np.float32)
    output[:2] = rng.uniform(100, 540, (2, 8400))
    output[2:4] = rng.uniform(4, 180, (2, 8400))
    output[4:] = rng.uniform(0, 1, (80, 8400)) ** 4  # most anchors' best score above conf, a few not
    options = PredictOptions(conf=0.3, iou=0.6, imgsz=640, max_det=max_det, classes=classes)
    fit = runtime.Fit(1.0, 1.0, 0, 0)
    got = runtime.decode_yolo(output, options, fit, (640, 640))
    [want] = non_max_suppression(
        torch.from_numpy(output[None]),
        options.conf,
        options.iou,
        classes=list(classes) if classes else None,
        max_det=max_det,
    )
    assert 0 < len(want) <= max_det
    assert np.array_equal(got.classes, want[:, 5].numpy())
    assert np.array_equal(got.scores, want[:, 4].numpy())
    np.testing.assert_allclose(got.xyxy, want[:, :4].numpy(), atol=1e-4)


# --- the whole detector against ultralytics on the same export --------------------------------------


def _entry(cache: Path, backend: str, family: str) -> backends.CacheEntry:
    for path in sorted((cache / "exports").glob("[!.]*")):  # not the exports' lock files
        manifest = json.loads((path / "manifest.json").read_text())
        if (manifest["backend"], manifest["family"], manifest["imgsz"]) == (backend, family, SMALL_IMGSZ):
            entry = backends.read_entry(path)
            assert entry is not None
            return entry
    raise AssertionError(f"no {backend} export of {family}")


def _ultralytics_on(entry: backends.CacheEntry, family: str, backend: str) -> object:
    """ultralytics' own predictor over the export file; OpenVINO compiled at fp32 as ours is."""
    from ultralytics import RTDETR, YOLO

    path = str(entry.artifact)
    model = RTDETR(path) if family == "rtdetr" else YOLO(path, task="detect")
    model.predict(np.zeros((32, 32, 3), np.uint8), imgsz=SMALL_IMGSZ, verbose=False)
    if backend == "openvino":  # ultralytics leaves the precision to the CPU (bf16 where it has it)
        import openvino as ov

        xml = str(next(entry.artifact.glob("*.xml")))
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": ov.Type.f32}
        model.predictor.model.backend.ov_compiled_model = ov.Core().compile_model(xml, "CPU", config)
    return model


def _pictures() -> list[np.ndarray]:
    bus, zidane = (cv2.imread(str(SAMPLES / name)) for name in ("bus.jpg", "zidane.jpg"))
    tall = np.ascontiguousarray(cv2.resize(bus, (90, 400)))
    return [bus, zidane, tall]


@pytest.mark.parametrize("family", ["rtdetr", "yolo"])
@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs[b]) for b in backends.EXPORTED])
@pytest.mark.parametrize("filtered", [False, True])
def test_detections_equal_ultralytics_predict_on_the_same_export(
    family: str, backend: str, filtered: bool, exported: tuple[Path, list[str]]
) -> None:
    entry = _entry(exported[0], backend, family)
    options = PredictOptions(conf=CONF[family], iou=0.5, imgsz=SMALL_IMGSZ, max_det=30)
    ref = resolve(str(entry.manifest["source"]), family)  # type: ignore[arg-type]
    ours = loading._load_exported(ref, entry, options, "fp32")
    classes = None
    if filtered:  # two of the classes it finds unfiltered (random weights: not the same as a trained model's)
        found_ids = [d.class_id for d in ours.predict(_pictures()[:1])[0][0]]
        classes = tuple(dict.fromkeys(found_ids))[:2]
        ours.options = replace(options, classes=classes)
    theirs = _ultralytics_on(entry, family, backend)
    found = 0
    for image in _pictures():
        [(dets, speed)] = ours.predict([image])
        [result] = theirs.predict(  # type: ignore[attr-defined]
            image,
            conf=options.conf,
            iou=options.iou,
            imgsz=SMALL_IMGSZ,
            max_det=options.max_det,
            classes=list(classes) if classes else None,
            verbose=False,
        )
        boxes = result.boxes
        assert [d.class_id for d in dets] == boxes.cls.int().tolist()
        np.testing.assert_allclose([d.xyxy for d in dets] or np.empty((0, 4)), boxes.xyxy.numpy(), atol=1e-3)
        np.testing.assert_allclose([d.confidence for d in dets], boxes.conf.numpy(), atol=1e-5)
        assert speed.inference > 0
        found += len(dets)
    assert found > 0, "the seeded model should find boxes at this confidence"


@needs["openvino"]
def test_throughput_mode_keeps_input_order_and_results(
    exported: tuple[Path, list[str]], tmp_path: Path
) -> None:
    entry = _entry(exported[0], "openvino", "yolo")
    options = PredictOptions(conf=CONF["yolo"], imgsz=SMALL_IMGSZ, max_det=10)
    ref = resolve(str(entry.manifest["source"]), "yolo")
    latency = loading._load_exported(ref, entry, options, "fp32", "latency")
    throughput = loading._load_exported(ref, entry, options, "fp32", "throughput")
    if (os.cpu_count() or 1) > 1:
        assert throughput.in_flight > 1, "THROUGHPUT mode should run several requests at once"
    # one request queued behind each running one, so no stream waits for Python between pictures
    optimal = int(throughput.session.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    assert throughput.in_flight == runtime.sessions.QUEUED_PER_STREAM * optimal
    assert latency.in_flight == 1
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (40 + 7 * i, 60 + 5 * i, 3), dtype=np.uint8) for i in range(7)]
    one_by_one = [latency.predict([image])[0][0] for image in images]
    together = [dets for dets, _ in throughput.predict(images)]
    assert len(together) == len(images)
    for want, got in zip(one_by_one, together, strict=True):
        assert [d.class_id for d in got] == [d.class_id for d in want]
        np.testing.assert_allclose([d.xyxy for d in got], [d.xyxy for d in want], atol=1e-3)


@pytest.mark.skipif(not backends.installed("openvino"), reason="openvino not installed")
def test_openvino_takes_the_uint8_picture_and_equals_the_float_input(
    exported: tuple[Path, list[str]],
) -> None:
    import openvino as ov

    entry = _entry(exported[0], "openvino", "yolo")
    xml = next(entry.artifact.glob("*.xml"))
    config = {"INFERENCE_PRECISION_HINT": ov.Type.f32}
    plain = ov.Core().compile_model(str(xml), "CPU", config)
    session = runtime.OpenVINOSession(xml, "fp32", None)
    square, _ = runtime.letterbox(cv2.imread(str(SAMPLES / "bus.jpg")), SMALL_IMGSZ, stretch=False)
    x = session.prepare(square)
    assert x.dtype == np.uint8 and x.shape == (1, SMALL_IMGSZ, SMALL_IMGSZ, 3)  # no float copy made
    want = plain.create_infer_request().infer({0: runtime.to_input(square)})[0]
    got, _ = session.run(x)
    assert np.array_equal(got, want)


@pytest.mark.skipif(not backends.installed("openvino"), reason="openvino not installed")
def test_a_failure_in_post_processing_reaches_the_caller_in_throughput_mode(
    exported: tuple[Path, list[str]],
) -> None:
    entry = _entry(exported[0], "openvino", "yolo")
    options = PredictOptions(conf=CONF["yolo"], imgsz=SMALL_IMGSZ, max_det=10)
    ref = resolve(str(entry.manifest["source"]), "yolo")
    detector = loading._load_exported(ref, entry, options, "fp32", "throughput")
    if detector.in_flight < 2:
        pytest.skip("one CPU: OpenVINO runs one request at a time")
    images = [np.full((50, 60, 3), i * 30, dtype=np.uint8) for i in range(5)]

    def fails(i: int, output: np.ndarray, ms: float) -> object:  # runs on OpenVINO's thread
        if i == 3:
            raise ValueError("picture 3")
        return i

    with pytest.raises(ValueError, match="picture 3"):
        squares = (runtime.letterbox(im, SMALL_IMGSZ, stretch=False)[0] for im in images)
        detector.session.run_many((detector.session.prepare(sq) for sq in squares), fails)
    assert len(detector.predict(images)) == 5  # the queue is still usable afterwards


# --- the compiled-model cache ------------------------------------------------------------------------


@pytest.fixture
def private_entry(exported: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the session's exports, its compiled caches removed, free to change."""
    cache = tmp_path / "cache"
    shutil.copytree(exported[0] / "exports", cache / "exports")
    for compiled in (cache / "exports").glob(f"*/{backends.COMPILED}"):
        shutil.rmtree(compiled)
    monkeypatch.setenv("DETECT_CACHE_DIR", str(cache))
    return cache


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs[b]) for b in backends.EXPORTED])
def test_compiled_model_is_cached_once_and_reused(backend: str, private_entry: Path) -> None:
    entry = _entry(private_entry, backend, "yolo")
    options = PredictOptions(conf=CONF["yolo"], imgsz=SMALL_IMGSZ)
    ref = resolve(str(entry.manifest["source"]), "yolo")
    compiled = entry.path / backends.COMPILED
    assert not compiled.exists()
    first = loading._load_exported(ref, entry, options, "fp32")
    made = {p.name: p.stat().st_mtime_ns for p in compiled.iterdir() if p.name != ".lock"}
    assert made, "the first load caches the compiled model"
    second = loading._load_exported(ref, entry, options, "fp32")
    assert {p.name: p.stat().st_mtime_ns for p in compiled.iterdir() if p.name != ".lock"} == made
    image = cv2.imread(str(SAMPLES / "bus.jpg"))
    assert first.predict([image])[0][0] == second.predict([image])[0][0]
    assert backends.read_entry(entry.path) is not None, "the cache folder is not part of the export's files"
    assert entry.size_bytes > sum(entry.manifest["files"].values()), "eviction counts the compiled cache"


@needs["openvino"]
def test_openvino_keeps_one_compiled_blob_per_precision_and_mode(private_entry: Path) -> None:
    """The uint8-input IR is saved once beside the blobs and compiled by path; a blob that a newer
    network replaced for the same precision and mode is deleted, not kept beside it. (OpenVINO's blob
    does not depend on the performance hint: both modes may share one.)"""
    entry = _entry(private_entry, "openvino", "yolo")
    options = PredictOptions(conf=CONF["yolo"], imgsz=SMALL_IMGSZ)
    ref = resolve(str(entry.manifest["source"]), "yolo")
    compiled = entry.path / backends.COMPILED
    loading._load_exported(ref, entry, options, "fp32")
    record = json.loads((compiled / "blobs.json").read_text())
    [blob] = compiled.glob("*.blob")
    assert record == {"fp32-latency": blob.name}
    assert (compiled / "model.uint8.xml").is_file() and (compiled / "model.uint8.bin").is_file()

    # As after an upgrade: the record names an older blob for this config, and its own is gone.
    (compiled / "older.blob").write_bytes(b"made by an earlier version")
    (compiled / "blobs.json").write_text(json.dumps({**record, "fp32-latency": "older.blob"}))
    blob.unlink()
    loading._load_exported(ref, entry, options, "fp32")
    assert not (compiled / "older.blob").exists()
    assert json.loads((compiled / "blobs.json").read_text())["fp32-latency"] == blob.name
    assert list(compiled.glob("*.blob")) == [blob]


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs[b]) for b in backends.EXPORTED])
def test_a_cut_compiled_file_is_rebuilt(backend: str, private_entry: Path) -> None:
    entry = _entry(private_entry, backend, "yolo")
    options = PredictOptions(conf=CONF["yolo"], imgsz=SMALL_IMGSZ)
    ref = resolve(str(entry.manifest["source"]), "yolo")
    image = cv2.imread(str(SAMPLES / "zidane.jpg"))
    want = loading._load_exported(ref, entry, options, "fp32").predict([image])[0][0]
    for path in (entry.path / backends.COMPILED).iterdir():
        if path.name != ".lock":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # a run killed while writing it
    assert loading._load_exported(ref, entry, options, "fp32").predict([image])[0][0] == want


# --- a cached run, whole process ---------------------------------------------------------------------


@needs["openvino"]
def _run_without_torch(argv: list[str], cache: Path, timeout: int) -> None:
    """`detect ARGV` in a child process on the export cache `cache`: it exits 0 and never imports torch,
    ultralytics or torchvision."""
    child = (
        "import sys\n"
        "from detect_cli.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules))\n"
    )
    env = {**os.environ, "DETECT_CACHE_DIR": str(cache)}
    argv_ = [sys.executable, "-c", child]
    done = subprocess.run(argv_, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_a_cached_run_never_imports_torch(exported: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Once the export and its parity with PyTorch are cached, `detect image` runs without torch and
    ultralytics (about 2 s and several hundred MB saved), writing the same records."""
    entry = _entry(exported[0], "openvino", "yolo")
    out = tmp_path / "run"
    argv = [
        "image", str(SAMPLES / "bus.jpg"), "-m", entry.manifest["source"], "--backend", "openvino",
        "--imgsz", str(SMALL_IMGSZ), "--conf", str(CONF["yolo"]), "--out", str(out),
    ]  # fmt: skip
    _run_without_torch(argv, exported[0], timeout=120)
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert (record["backend"], record["error"]) == ("openvino", None) and record["detections"]
    assert (out / "bus.jpg").is_file()


def test_a_cached_compare_reports_params_and_gflops_without_torch(
    exported: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """`detect compare` on a cached export reports the network's params and GFLOPs (kept in the export's
    manifest when it was made) and still never imports torch or ultralytics."""
    entry = _entry(exported[0], "openvino", "yolo")
    out = tmp_path / "compare"
    source = entry.manifest["source"]
    argv = [
        "compare", str(SAMPLES / "bus.jpg"), "-m", f"{source},{source}", "--backend", "openvino",
        "--imgsz", str(SMALL_IMGSZ), "--no-memory", "--warmup", "0", "--out", str(out),
    ]  # fmt: skip
    _run_without_torch(argv, exported[0], timeout=300)
    report = json.loads((out / "report.json").read_text())
    size = entry.manifest["size"]
    for m in report["models"]:
        assert m["info"]["params_m"] == pytest.approx(size["params_m"], abs=1e-4) and m["info"]["gflops"]
    assert "<th class=n>params M</th>" in (out / "report.html").read_text()


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs[b]) for b in backends.EXPORTED])
def test_names_are_read_from_the_export_when_the_manifest_lacks_them(
    backend: str, exported: tuple[Path, list[str]]
) -> None:
    """Exports cached before the manifest kept class names still load with the names ultralytics wrote."""
    entry = _entry(exported[0], backend, "yolo")
    session = runtime.open_session(entry.artifact, backend, "fp32", None, "latency")
    names = {int(k): v for k, v in entry.manifest["names"].items()}
    assert runtime.export_names(entry.artifact, session) == names and len(names) == 80


@needs["onnx"]
def test_an_end_to_end_yolo26_export_equals_ultralytics_predict(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """YOLO26's one-to-one head exports (1, 300, 6) rows, already boxes in input pixels: decoded
    without NMS, they equal ultralytics' predict on the same file."""
    import torch
    from conftest import built_once
    from ultralytics import YOLO

    def build(folder: Path) -> None:
        torch.manual_seed(0)
        YOLO("yolo26n.yaml").save(folder / "yolo26n-seed0.pt")

    pt = built_once(tmp_path_factory, "weights-yolo26", build) / "yolo26n-seed0.pt"
    options = PredictOptions(conf=1e-4, imgsz=SMALL_IMGSZ, max_det=30)
    ours = backends.load(resolve(str(pt), "yolo"), options, backends.plan("onnx", "cpu"))
    assert type(ours).__name__ == "ExportedDetector" and ours.end2end and ours.nms_free
    [entry] = backends.cached_exports()
    theirs = YOLO(str(entry.artifact), task="detect")
    for image in _pictures():
        [(dets, _)] = ours.predict([image])
        [result] = theirs.predict(image, conf=1e-4, imgsz=SMALL_IMGSZ, max_det=30, verbose=False)
        assert dets and [d.class_id for d in dets] == result.boxes.cls.int().tolist()
        np.testing.assert_allclose([d.xyxy for d in dets], result.boxes.xyxy.numpy(), atol=1e-3)
        np.testing.assert_allclose([d.confidence for d in dets], result.boxes.conf.numpy(), atol=1e-5)


# --- a throughput run that ends on an error, whole process --------------------------------------------


@needs["openvino"]
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this platform")
def test_a_throughput_run_ending_on_an_error_exits_cleanly(
    exported: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """12 pictures (THROUGHPUT mode: several requests in flight) into a stdout that fails: a full device
    (one `error:` line, exit 2) or a reader that left (exit 141), again and again. OpenVINO's compiled
    model and queue never outlive the interpreter's orderly exit (checked at the very end of the child,
    after every other exit hook), so no run ends in `terminate called without an active exception`
    (exit 134), as one in a few did."""
    from conftest import make_image

    entry = _entry(exported[0], "openvino", "yolo")
    folder = tmp_path / "in"
    for i in range(12):
        make_image(folder / f"p{i}.jpg", i)
    probe = (
        "import atexit, gc, sys\n"
        "def alive():\n"  # registered first, so it runs last
        "    gc.collect()\n"
        "    left = sorted({type(o).__name__ for o in gc.get_objects()\n"
        "                   if type(o).__name__ in ('AsyncInferQueue', 'CompiledModel', 'InferRequest')})\n"
        "    print('alive at exit:', left, file=sys.stderr)\n"
        "atexit.register(alive)\n"
        "from detect_cli.cli import main\n"
        "sys.argv[0] = 'detect'\n"
        "main()\n"
    )
    env = {**os.environ, "DETECT_CACHE_DIR": str(exported[0])}
    for attempt in range(8):
        out = tmp_path / f"run{attempt}"
        argv = [
            sys.executable, "-c", probe, "image", str(folder), "-m", entry.manifest["source"],
            "--backend", "openvino", "--imgsz", str(SMALL_IMGSZ), "--conf", str(CONF["yolo"]),
            "--out", str(out), "--json", "-q",
        ]  # fmt: skip
        full = attempt % 2 == 0
        if full:
            with open("/dev/full", "wb") as stdout:
                done = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=60)
        else:
            read_end, write_end = os.pipe()
            os.close(read_end)
            try:
                done = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60)
            finally:
                os.close(write_end)
        err = done.stderr.decode("utf-8", "replace")
        assert "terminate called" not in err and done.returncode != 134, err[-2000:]
        assert done.returncode == (2 if full else 141), err[-2000:]
        assert "alive at exit: []" in err, err[-2000:]
        assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
        records = (out / "results.jsonl").read_text().splitlines()
        assert 1 <= len(records) <= 12 and all(json.loads(r)["backend"] == "openvino" for r in records)
