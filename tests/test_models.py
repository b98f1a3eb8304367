from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ, make_image

from detect_cli.errors import BadOptionError, ModelError
from detect_cli.models import (
    PredictOptions,
    cache_dir,
    catalog,
    fetch_weights,
    is_coco80,
    load,
    resolve,
    resolve_classes,
    select_device,
)

BUS = str(Path(__file__).parents[1] / "samples" / "bus.jpg")


@pytest.mark.parametrize(
    ("value", "family", "name", "expected_family", "official"),
    [
        (None, "rtdetr", "rtdetr-l", "rtdetr", True),
        (None, "yolo", "yolo11n", "yolo", True),
        ("rtdetr", "yolo", "rtdetr-l", "rtdetr", True),
        ("YOLO11s", "rtdetr", "yolo11s", "yolo", True),
        ("yolo11x.pt", "rtdetr", "yolo11x", "yolo", True),
        ("rtdetr-l.yaml", "yolo", "rtdetr-l", "rtdetr", False),
        ("yolo11n.yaml", "rtdetr", "yolo11n", "yolo", False),
        ("yolo26", "rtdetr", "yolo26n", "yolo", True),
        ("yolo12s", "rtdetr", "yolo12s", "yolo", True),
        ("yolo26n.yaml", "rtdetr", "yolo26n", "yolo", False),
    ],
)
def test_resolve(value: str | None, family: str, name: str, expected_family: str, official: bool) -> None:
    ref = resolve(value, family)  # type: ignore[arg-type]
    assert (ref.name, ref.family, ref.official) == (name, expected_family, official)
    if official:
        assert Path(ref.location).parent == cache_dir() / "weights"


def test_resolve_unknown_name() -> None:
    with pytest.raises(ModelError, match="unknown model 'yolo99'"):
        resolve("yolo99", "yolo")


def test_local_file_wins_over_official_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("yolo11n.pt").write_bytes(b"x")
    ref = resolve("yolo11n.pt", "yolo")
    assert not ref.official and ref.location == "yolo11n.pt"


def test_offline_download_fails_with_one_clear_message() -> None:
    ref = resolve("rtdetr-l", "rtdetr")
    with pytest.raises(ModelError) as err:
        fetch_weights(ref)
    message = str(err.value)
    assert message.startswith("cannot get weights for rtdetr-l")
    assert "--model" in message and ".yaml" in message and "\n" not in message
    assert not Path(ref.location).exists()


def test_cached_weights_are_used_without_download(rtdetr_pt: Path) -> None:
    ref = resolve("rtdetr-l", "rtdetr")
    Path(ref.location).parent.mkdir(parents=True, exist_ok=True)
    Path(ref.location).write_bytes(rtdetr_pt.read_bytes())
    assert fetch_weights(ref) == Path(ref.location)
    assert load(ref, PredictOptions(imgsz=SMALL_IMGSZ)).family == "rtdetr"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_corrupt_weights_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "rtdetr-broken.pt"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="cannot load model" if content else "is empty"):
        load(resolve(str(bad), "rtdetr"), PredictOptions())


def _cut(path: Path, to: Path) -> Path:
    to.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return to


def _openvino_folder(tmp_path: Path, xml: str, weights: bytes) -> Path:
    folder = tmp_path / "best_openvino_model"
    folder.mkdir()
    (folder / "best.xml").write_text(xml)
    (folder / "best.bin").write_bytes(weights)
    (folder / "metadata.yaml").write_text("task: detect\nnames: {0: person}\nimgsz: [64, 64]\n")
    return folder


IR_HEAD = '<?xml version="1.0"?>\n<net name="best" version="11">\n<layers>\n<layer id="0" name="images" '
BROKEN_MODELS = {
    "cut .pt": (lambda tmp, pt: _cut(pt, tmp / "yolo-cut.pt"), "yolo-cut.pt: ", "not a loadable checkpoint"),
    "bad YAML": (
        lambda tmp, pt: _write(tmp / "yolo-bad.yaml", "nc: 80\nbackbone: [[-1, 1, Conv]\n  head: : :\n"),
        "yolo-bad.yaml is not valid YAML",
        "(line 3, column 3)",
    ),
    "YAML that is no model": (
        lambda tmp, pt: _write(tmp / "yolo-x.yaml", "names: [a, b]\n"),
        "yolo-x.yaml is not an ultralytics model config",
        "needs 'backbone' and 'head'",
    ),
    "random .onnx": (
        lambda tmp, pt: _write(tmp / "yolo.onnx", os.urandom(4096)),
        "yolo.onnx: ",
        "not a loadable ONNX model",
    ),
    "OpenVINO folder, cut .xml": (
        lambda tmp, pt: _openvino_folder(tmp, IR_HEAD, os.urandom(1024)),
        "best.xml is damaged (not valid XML",
        "export it again",
    ),
    "OpenVINO folder, no .bin": (
        lambda tmp, pt: _openvino_folder(tmp, IR_HEAD + "/></layers></net>\n", b""),
        "best.xml has no weights",
        "best.bin is missing or empty",
    ),
    "OpenVINO folder, XML that is no model": (
        lambda tmp, pt: _openvino_folder(tmp, '<?xml version="1.0"?>\n<data/>\n', os.urandom(1024)),
        "cannot load model ",
        "best_openvino_model",
    ),
}


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", list(BROKEN_MODELS))
def test_a_broken_model_file_is_one_error_line_naming_it(yolo_pt: Path, tmp_path: Path, case: str) -> None:
    """In a real process (ultralytics' logger writes to the stderr it found at import): a cut .pt, bad
    YAML, a random .onnx or a damaged OpenVINO export gave 2 to 6 lines, some the catch-all."""
    make, says, why = BROKEN_MODELS[case]
    model = make(tmp_path, yolo_pt)
    picture = tmp_path / "pic.jpg"
    make_image(picture)
    argv = [sys.executable, "-m", "detect_cli", "yolo", "image", picture, "-m", model, "--backend", "torch"]
    if case.startswith(("random", "OpenVINO")):  # an export runs on its own backend
        argv[-1] = "onnx" if case.startswith("random") else "openvino"
    argv += ["--imgsz", "64", "--device", "cpu", "-o", tmp_path / "out", "-q"]
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: ") and says in line and why in line, line
    assert "unexpected" not in line and not (tmp_path / "out").exists()


def test_family_is_read_from_the_weights_not_the_name(yolo_pt: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "mystery.pt"
    renamed.write_bytes(yolo_pt.read_bytes())
    detector = load(resolve(str(renamed), "rtdetr"), PredictOptions(imgsz=SMALL_IMGSZ))
    assert detector.family == "yolo"
    assert type(detector.model).__name__ == "YOLO"


def test_catalog_lists_every_official_model() -> None:
    rows = catalog()
    assert {r["name"] for r in rows} >= {"rtdetr-l", "rtdetr-x", "yolo11n", "yolo11x"}
    assert all(r["present"] is False for r in rows)


def test_select_device() -> None:
    import torch

    assert select_device("cpu") == "cpu"
    assert select_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(BadOptionError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BadOptionError, match="CUDA is not available"):
            select_device("cuda:0")


def test_resolve_classes() -> None:
    names = {0: "person", 1: "bicycle", 2: "car"}
    assert resolve_classes("person, 2,CAR", names) == (0, 2)
    assert resolve_classes(None, names) is None
    with pytest.raises(BadOptionError, match="unknown class 'dog'"):
        resolve_classes("dog", names)


@pytest.mark.parametrize(
    ("classes", "error"),
    [
        (",", "names no class"),
        (" , ,", "names no class"),
        ("", "names no class"),
        ("²", "unknown class '²'"),  # str.isdigit() is true for it; int() is not
        ("\u0661", "unknown class '\u0661'"),  # int() reads an Arabic-Indic 1 as 1: not an id the user typed
        ("9" * 5000, "unknown class"),  # more digits than int() converts
    ],
)
def test_resolve_classes_refuses_empty_lists_and_non_ascii_digits(classes: str, error: str) -> None:
    with pytest.raises(BadOptionError, match=error):
        resolve_classes(classes, {0: "person", 1: "bicycle", 2: "car"})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("12", 12),
        ("007", 7),
        ("", None),
        ("²", None),
        ("٣", None),
        ("-1", None),
        (" 1", None),
        ("1.0", None),
        ("1e3", None),
        ("+1", None),
        ("1_000", None),
        ("9" * 5000, None),
    ],
)
def test_ascii_int(text: str, value: int | None) -> None:
    from detect_cli.sources import ascii_int

    assert ascii_int(text) == value


def test_is_coco80() -> None:
    from ultralytics.utils import YAML
    from ultralytics.utils.checks import check_yaml

    coco = YAML.load(check_yaml("coco.yaml"))["names"]
    assert is_coco80(coco)
    assert not is_coco80({i: str(i) for i in range(80)})


# --- detections equal ultralytics' own predict --------------------------------------------------


def _ultralytics_predict(weights: Path, family: str, **kw: object) -> list[tuple]:
    from ultralytics import RTDETR, YOLO

    model = (RTDETR if family == "rtdetr" else YOLO)(str(weights))
    r = model.predict(BUS, verbose=False, **kw)[0]
    return [
        (int(c), round(float(s), 5), [round(v, 2) for v in b])
        for b, s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist(), strict=True)
    ]


@pytest.mark.parametrize(("family", "conf"), [("rtdetr", 0.01), ("yolo", 1e-6)])
def test_detections_equal_ultralytics_predict(
    family: str, conf: float, rtdetr_pt: Path, yolo_pt: Path
) -> None:
    from detect_cli.sources import decode_image

    weights = rtdetr_pt if family == "rtdetr" else yolo_pt
    kw = {"conf": conf, "imgsz": SMALL_IMGSZ, "max_det": 50, "iou": 0.5}
    expected = _ultralytics_predict(weights, family, **kw)
    detector = load(resolve(str(weights), family), PredictOptions(device="cpu", **kw))  # type: ignore[arg-type]
    [(dets, speed)] = detector.predict([decode_image(Path(BUS).read_bytes())])
    got = [(d.class_id, round(d.confidence, 5), [round(v, 2) for v in d.xyxy]) for d in dets]
    assert expected, "the seeded model should produce detections at this confidence"
    assert got == expected
    assert speed.inference > 0


@pytest.mark.parametrize(
    ("nms", "family", "iou", "kept"),
    [
        (False, "rtdetr", 0.5, 4),  # RT-DETR as published: no NMS, the duplicate stays
        (True, "rtdetr", 0.5, 3),  # --nms: the lower-scored duplicate of the same class goes
        (True, "rtdetr", 0.95, 4),  # ...but only above --iou
        (True, "yolo", 0.5, 4),  # YOLO's NMS already ran inside ultralytics; not applied twice
    ],
)
def test_nms_after_rtdetr(rtdetr_pt: Path, nms: bool, family: str, iou: float, kept: int) -> None:
    """Class-wise NMS on a real ultralytics Results holding two overlapping boxes of one class."""
    import numpy as np
    import torch
    from ultralytics.engine.results import Results

    boxes = torch.tensor(
        [
            [10, 10, 50, 50, 0.9, 0],
            [12, 12, 50, 50, 0.8, 0],  # IoU 0.9 with the first, same class
            [12, 12, 50, 50, 0.7, 1],  # same place, other class: kept (class-wise)
            [60, 60, 90, 90, 0.6, 0],
        ]
    )
    result = Results(np.zeros((100, 100, 3), np.uint8), "x.jpg", {0: "a", 1: "b"}, boxes=boxes)
    detector = load(resolve(str(rtdetr_pt), "rtdetr"), PredictOptions(imgsz=SMALL_IMGSZ, nms=nms, iou=iou))
    detector.ref = replace(detector.ref, family=family)
    dets = detector._detections(result)
    assert len(dets) == kept
    assert dets[0].confidence == pytest.approx(0.9)


# Published COCO val2017 mAP50-95 at 640 px: https://docs.ultralytics.com/models/yolo26/ (the end-to-end
# column, which is what predict runs) and https://docs.ultralytics.com/models/yolo12/.
HYBRIDS = {
    "yolo26n": 40.1, "yolo26s": 47.8, "yolo26m": 52.5, "yolo26l": 54.4, "yolo26x": 56.9,
    "yolo12n": 40.6, "yolo12s": 48.0, "yolo12m": 52.5, "yolo12l": 53.7, "yolo12x": 55.2,
}  # fmt: skip


def test_hybrids_are_registered_as_ultralytics_names_and_loads_them() -> None:
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    from detect_cli.models import REGISTRY, get_spec

    for name, published in HYBRIDS.items():
        spec = get_spec(name)
        assert spec is not None and spec.published_map == published
        assert (spec.family, spec.ultralytics_class, spec.design) == ("yolo", "YOLO", "hybrid")
        assert spec.weights == f"{name}.pt" and spec.weights in GITHUB_ASSETS_NAMES  # downloadable by name
        assert spec.config == f"{name}.yaml" and spec.nms_free == name.startswith("yolo26")
    assert all(s.weights in GITHUB_ASSETS_NAMES for s in REGISTRY)
    rows = {r["name"]: r for r in catalog()}
    assert rows["yolo26n"]["nms_free"] and rows["yolo26n"]["design"] == "hybrid"
    assert rows["rtdetr-l"]["nms_free"] and not rows["yolo12n"]["nms_free"]


@pytest.mark.parametrize(
    ("config", "nms_free"),
    [("yolo26n.yaml", True), ("yolo12n.yaml", False), ("yolo11n.yaml", False), ("rtdetr-l.yaml", True)],
)
def test_nms_free_follows_the_loaded_network(config: str, nms_free: bool) -> None:
    """YOLO26 has an end-to-end head, and predict runs it (so ultralytics applies no NMS)."""
    import numpy as np

    detector = load(resolve(config, "yolo"), PredictOptions(imgsz=SMALL_IMGSZ))
    assert detector.nms_free is nms_free
    detector.predict([np.zeros((64, 96, 3), np.uint8)])
    if config.startswith("yolo"):  # the head predict ran: the end-to-end one for YOLO26 only
        assert detector.model.predictor.model.end2end is nms_free


def test_nms_applies_to_yolo26_as_to_rtdetr() -> None:
    import numpy as np
    import torch
    from ultralytics.engine.results import Results

    boxes = torch.tensor([[10, 10, 50, 50, 0.9, 0], [12, 12, 50, 50, 0.8, 0], [60, 60, 90, 90, 0.6, 0]])
    result = Results(np.zeros((100, 100, 3), np.uint8), "x.jpg", {0: "a"}, boxes=boxes)
    for nms, kept in ((False, 3), (True, 2)):
        detector = load(resolve("yolo26n.yaml", "yolo"), PredictOptions(imgsz=SMALL_IMGSZ, nms=nms, iou=0.5))
        assert len(detector._detections(result)) == kept


@pytest.mark.parametrize(("name", "family"), [("rtdetr-l", "rtdetr"), ("yolo11n", "yolo")])
def test_stand_ins_carry_the_official_models_class_names(name: str, family: str) -> None:
    """An official model built from its config (--offline-fallback) has COCO's 80 names, not "0" … "79"."""
    from detect_cli.models import PredictOptions, load, stand_in

    detector = load(stand_in(resolve(name, family)), PredictOptions(imgsz=SMALL_IMGSZ))
    assert is_coco80(detector.names) and detector.names[2] == "car"


def test_a_users_own_config_keeps_its_names(tmp_path: Path) -> None:
    """Only official configs are named as COCO: a config of one's own keeps the classes it declares."""
    import shutil

    from ultralytics.utils import ROOT

    from detect_cli.models import PredictOptions, load

    own = tmp_path / "yolo11n-mine.yaml"
    shutil.copy(ROOT / "cfg" / "models" / "11" / "yolo11.yaml", own)
    detector = load(resolve(str(own), "yolo"), PredictOptions(imgsz=SMALL_IMGSZ))
    assert detector.names[0] == "0" and not is_coco80(detector.names)


def test_an_rtdetr_config_builds_without_ultralytics_assuming_its_scale() -> None:
    """ultralytics guesses a scale from YOLO file names only and warns 'no model scale passed' for
    rtdetr-l.yaml, once per run; its one scale is passed, and the network is the same."""
    code = (
        "from detect_cli.models import PredictOptions, load, resolve\n"
        "d = load(resolve('rtdetr-l.yaml', 'rtdetr'), PredictOptions(imgsz=64))\n"
        "print('PARAMS', sum(p.numel() for p in d.model.model.parameters()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "scale" not in proc.stderr, proc.stderr
    from ultralytics import RTDETR  # built by ultralytics itself, with its warning: the same network

    assert f"PARAMS {sum(p.numel() for p in RTDETR('rtdetr-l.yaml').model.parameters())}" in proc.stdout


def test_an_openvino_export_sends_no_telemetry(tmp_path: Path) -> None:
    """OpenVINO's converter reports each export to Google Analytics through `openvino_telemetry` (and
    writes ~/intel/ for it) unless told not to; a run that exports must make no such call. A real export
    in a child process whose home is empty and whose proxy never answers: no ~/intel, no traceback of a
    telemetry child killed for being slow."""
    pytest.importorskip("openvino")
    import socket

    home = tmp_path / "home"
    home.mkdir()
    make_image(tmp_path / "in" / "a.jpg")
    with socket.socket() as sink:  # accepts connections and never answers
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        proxy = f"http://127.0.0.1:{sink.getsockname()[1]}"
        env = {
            **os.environ,
            "HOME": str(home),
            "DETECT_CACHE_DIR": str(tmp_path / "cache"),
            "https_proxy": proxy,
            "http_proxy": proxy,
        }
        weights = Path(__file__).parent / "data" / "trained" / "yolo-shapes.pt"
        argv = ["yolo", "image", tmp_path / "in", "-m", weights, "--imgsz", 128, "--backend", "openvino"]
        done = subprocess.run(
            [sys.executable, "-m", "detect_cli", *map(str, argv), "-o", str(tmp_path / "out"), "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not (home / "intel").exists(), sorted(p.name for p in (home / "intel").iterdir())
