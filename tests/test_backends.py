"""ONNX Runtime and OpenVINO backends: choosing, exporting once into the cache, parity with PyTorch.

Exports are slow, so each (model, backend) is exported once per test session into a shared cache
(`exported`); tests that change or count exports work on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, SMALL_IMGSZ, make_image
from typer.testing import CliRunner

from detect_cli import backends
from detect_cli.backends import Parity, Plan, cache, export, loading, parity_between, planning
from detect_cli.cli import app
from detect_cli.errors import BadOptionError, MissingBackendError
from detect_cli.models import Detector, PredictOptions, resolve
from detect_cli.results import Detection
from detect_cli.writers import read_jsonl

runner = CliRunner()
ALL = {"torch": True, "onnx": True, "openvino": True}

needs_onnx = pytest.mark.skipif(not backends.installed("onnx"), reason="onnx/onnxruntime not installed")
needs_openvino = pytest.mark.skipif(not backends.installed("openvino"), reason="openvino not installed")
BACKEND_PARAMS = [
    pytest.param("onnx", marks=needs_onnx),
    pytest.param("openvino", marks=needs_openvino),
]


# --- choosing a backend and a precision ------------------------------------------------------------


def _plan(backend: str, precision: str | None = None, available: dict | None = None) -> Plan:
    """The plan the CLI decides for these options on the CPU (backends.plan, once)."""
    return backends.plan(backend, "cpu", precision, available=available)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("requested", "device", "available", "expected"),
    [
        ("auto", "cpu", ALL, "openvino"),
        ("auto", "cpu", {**ALL, "openvino": False}, "onnx"),
        ("auto", "cpu", {"torch": True, "onnx": False, "openvino": False}, "torch"),
        ("auto", "cuda:0", ALL, "torch"),  # CUDA: PyTorch (fp16 with --half)
        ("auto", "mps", ALL, "torch"),
        ("torch", "cpu", ALL, "torch"),
        ("onnx", "cpu", ALL, "onnx"),
        ("openvino", "cpu", {**ALL, "onnx": False}, "openvino"),
        ("openvino", "cpu", {**ALL, "openvino": False}, MissingBackendError),
        ("onnx", "cpu", {**ALL, "onnx": False}, MissingBackendError),
        ("onnx", "cuda:0", ALL, BadOptionError),
        ("tensorrt", "cpu", ALL, BadOptionError),
    ],
)
def test_choose_backend(requested: str, device: str, available: dict, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):  # type: ignore[call-overload]
            backends.choose_backend(requested, device, available)
    else:
        assert backends.choose_backend(requested, device, available) == expected


def test_missing_backend_message_says_how_to_install() -> None:
    with pytest.raises(MissingBackendError) as err:
        backends.choose_backend("openvino", "cpu", {**ALL, "openvino": False})
    message = str(err.value)
    assert "\n" not in message and "detect-cli[cpu]" in message and "openvino" in message


def test_device_auto_means_cpu_for_exported_backends() -> None:
    assert backends.device_for("openvino", "auto") == "cpu"
    assert backends.device_for("auto", "auto") == "auto"  # auto backend follows the device
    assert backends.device_for("onnx", "cuda") == "cuda"  # then refused by choose_backend


@pytest.mark.parametrize(
    ("backend", "precision", "device", "half", "expected"),
    [
        ("torch", None, "cpu", False, None),
        ("torch", "fp32", "cpu", False, "fp32"),
        ("torch", None, "cuda:0", True, "fp16"),
        ("torch", "fp16", "cuda:0", False, "fp16"),
        ("torch", "fp16", "cpu", False, BadOptionError),
        ("torch", "bf16", "cpu", False, BadOptionError),
        ("openvino", "bf16", "cpu", False, "bf16"),
        ("openvino", "fp32", "cpu", False, "fp32"),
        ("openvino", "fp16", "cpu", False, BadOptionError),
        ("onnx", "bf16", "cpu", False, BadOptionError),
        ("torch", "fp32", "cuda:0", True, BadOptionError),  # --half contradicts fp32
    ],
)
def test_check_precision(
    backend: str, precision: str | None, device: str, half: bool, expected: object
) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):  # type: ignore[call-overload]
            backends.check_precision(backend, precision, device, half)  # type: ignore[arg-type]
    else:
        assert backends.check_precision(backend, precision, device, half) == expected  # type: ignore[arg-type]


# --- comparing detections ----------------------------------------------------------------------------


def _det(cls: int, conf: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(cls, str(cls), conf, box)


REF = [_det(0, 0.9, (10, 10, 50, 50)), _det(1, 0.8, (60, 60, 90, 90)), _det(0, 0.5, (0, 0, 20, 20))]


@pytest.mark.parametrize(
    ("candidate", "matched", "ok"),
    [
        (REF, 3, True),
        (list(reversed(REF)), 3, True),  # order does not matter
        ([_det(d.class_id, d.confidence + 0.01, d.xyxy) for d in REF], 3, True),  # within the score tolerance
        ([_det(d.class_id, d.confidence + 0.05, d.xyxy) for d in REF], 3, False),  # scores drift
        ([_det(d.class_id, d.confidence, (d.xyxy[0] + 5, *d.xyxy[1:])) for d in REF], 3, False),  # boxes move
        ([_det(2, d.confidence, d.xyxy) for d in REF], 0, False),  # other classes
        (REF[:2], 2, False),  # a box missing
        ([], 0, False),
    ],
)
def test_compare(candidate: list[Detection], matched: int, ok: bool) -> None:
    parity = parity_between(REF, candidate)
    assert (parity.reference, parity.matched, parity.ok) == (3, matched, ok)
    assert Parity.from_dict(json.loads(json.dumps(parity.to_dict()))) == parity


def test_compare_uses_each_candidate_once() -> None:
    twice = [_det(0, 0.9, (10, 10, 50, 50)), _det(0, 0.89, (10, 10, 50, 50))]
    assert parity_between(twice, twice[:1]).matched == 1


# --- exporting, once ---------------------------------------------------------------------------------


def _options(family: str, **kw: object) -> PredictOptions:
    base: dict[str, object] = {"conf": CONF[family], "imgsz": SMALL_IMGSZ, "device": "cpu", "max_det": 20}
    return PredictOptions(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def shared_cache(exported: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use the session's exports (read-only by convention)."""
    monkeypatch.setenv("DETECT_CACHE_DIR", str(exported[0]))
    return exported[0]


@pytest.fixture
def own_cache(exported: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the session's YOLO exports (the small ones), free to damage."""
    cache = tmp_path / "own-cache"
    for entry in (exported[0] / "exports").glob("[!.]*"):  # not the exports' lock files
        if json.loads((entry / "manifest.json").read_text())["family"] == "yolo":
            shutil.copytree(entry, cache / "exports" / entry.name)
    monkeypatch.setenv("DETECT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def count_exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of the real exporter from now on, by backend."""
    calls: list[str] = []
    real = export.export_model

    def counting(model: object, backend: str, imgsz: int, folder: Path) -> Path:
        calls.append(backend)
        return real(model, backend, imgsz, folder)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "export_model", counting)
    return calls


def _weights(family: str, rtdetr_pt: Path, yolo_pt: Path) -> Path:
    return rtdetr_pt if family == "rtdetr" else yolo_pt


def test_first_exports_were_announced(exported: tuple[Path, list[str]]) -> None:
    _, warnings = exported
    n = sum(backends.installed(b) for b in backends.EXPORTED)
    assert sum(w.startswith("exporting ") for w in warnings) == 2 * n
    assert not any("differ" in w for w in warnings), warnings


@pytest.mark.parametrize("family", ["rtdetr", "yolo"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("precision", [None, "fp32"])
def test_detections_match_torch(
    family: str,
    backend: str,
    precision: str | None,
    shared_cache: Path,
    rtdetr_pt: Path,
    yolo_pt: Path,
    tmp_path: Path,
    count_exports: list[str],
) -> None:
    """Each backend, at its default precision and at fp32, finds what PyTorch finds on a test picture."""
    import cv2

    ref = resolve(str(_weights(family, rtdetr_pt, yolo_pt)), family)  # type: ignore[arg-type]
    torch_det = backends.load(ref, _options(family), _plan("torch"))
    exp_det = backends.load(ref, _options(family), _plan(backend, precision))  # type: ignore[arg-type]
    assert (torch_det.backend, exp_det.backend) == ("torch", backend)
    assert exp_det.precision in (("fp32", "bf16") if precision is None else (precision,))
    assert type(exp_det).__name__ == "ExportedDetector"  # run by its runtime, decoded as its family
    image = cv2.imread(str(make_image(tmp_path / "sq.png", seed=5, size=(96, 96))))
    [(want, _)] = torch_det.predict([image])
    [(got, speed)] = exp_det.predict([image])
    assert want, "the seeded model should find boxes at this confidence"
    parity = parity_between(want, got, precision=exp_det.precision)
    assert parity.ok, parity.describe()
    assert speed.inference > 0
    assert count_exports == [], "the session's export is reused"


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_cache_is_reused_and_recorded(
    backend: str, own_cache: Path, yolo_pt: Path, count_exports: list[str]
) -> None:
    entry = _entry(backend, "yolo")
    artifact_mtime = entry.artifact.stat().st_mtime_ns
    ref = resolve(str(yolo_pt), "yolo")
    for _ in range(2):
        detector = backends.load(ref, _options("yolo"), _plan(backend))
        assert detector.backend == backend
    assert count_exports == []
    assert entry.artifact.stat().st_mtime_ns == artifact_mtime
    manifest = json.loads((entry.path / "manifest.json").read_text())
    assert manifest["imgsz"] == SMALL_IMGSZ and manifest["weights_sha256"] == backends.weights_digest(
        str(yolo_pt)
    )
    assert manifest["parity"][detector.precision]["ok"] is True
    assert entry.path.name == backends.cache_key(manifest["weights_sha256"], SMALL_IMGSZ, backend, "fp32")
    # The network's size, counted once on the PyTorch model at export time, travels with the export.
    size = manifest["size"]
    assert size["params_m"] > 0.1 and size["gflops"] > 0 and size["fused"] in (True, False)
    assert detector.network_size == size


def test_other_imgsz_or_weights_get_their_own_export(
    own_cache: Path, yolo_pt: Path, tmp_path: Path, count_exports: list[str]
) -> None:
    if not backends.installed("onnx"):
        pytest.skip("onnx not installed")
    ref = resolve(str(yolo_pt), "yolo")
    backends.load(ref, _options("yolo", imgsz=96), _plan("onnx"))
    assert count_exports == ["onnx"]
    import torch
    from ultralytics import YOLO

    torch.manual_seed(1)
    other = tmp_path / "yolo11n-seed1.pt"
    YOLO("yolo11n.yaml").save(other)
    backends.load(resolve(str(other), "yolo"), _options("yolo"), _plan("onnx"))
    assert count_exports == ["onnx", "onnx"]
    assert len({e.path.name for e in backends.cached_exports() if e.manifest["backend"] == "onnx"}) == 3


def _entry(backend: str, family: str) -> backends.CacheEntry:
    return next(
        e
        for e in backends.cached_exports()
        if (e.manifest["backend"], e.manifest["family"], e.manifest["imgsz"])
        == (backend, family, SMALL_IMGSZ)
    )


def _yolo_onnx_entry() -> backends.CacheEntry:
    return _entry("onnx", "yolo")


@needs_onnx
def test_an_export_from_an_earlier_version_is_rebuilt_with_a_note_not_a_warning(
    own_cache: Path, yolo_pt: Path, count_exports: list[str]
) -> None:
    """A manifest of an earlier format is nothing broken: it is rebuilt once, said as a note (it used to
    read "incomplete or damaged", as a warning)."""
    from detect_cli.results import Note

    entry = _yolo_onnx_entry()
    manifest = entry.path / "manifest.json"
    manifest.write_text(json.dumps({**entry.manifest, "version": backends.MANIFEST_VERSION - 1}))
    said: list[str] = []
    backends.load(resolve(str(yolo_pt), "yolo"), _options("yolo"), _plan("onnx"), said.append)
    assert count_exports == ["onnx"]
    again = [w for w in said if "it again" in w]
    assert len(again) == 1 and isinstance(again[0], Note), said
    assert "from an earlier version of detect; exporting it again" in again[0], said
    assert not any("damaged" in w for w in said), said


@needs_onnx
@pytest.mark.parametrize("damage", ["truncate", "flip", "no-manifest"])
def test_damaged_entry_is_detected_and_rebuilt(
    damage: str, own_cache: Path, yolo_pt: Path, count_exports: list[str]
) -> None:
    from detect_cli.results import Note

    entry = _yolo_onnx_entry()
    artifact, manifest = entry.artifact, entry.path / "manifest.json"
    data = artifact.read_bytes()
    if damage == "truncate":
        artifact.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, different content: only the hash tells
        artifact.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    else:
        manifest.unlink()
    assert backends.read_entry(entry.path) is None
    warnings: list[str] = []
    detector = backends.load(resolve(str(yolo_pt), "yolo"), _options("yolo"), _plan("onnx"), warnings.append)
    assert count_exports == ["onnx"]
    assert any("incomplete or damaged" in w and not isinstance(w, Note) for w in warnings), warnings
    rebuilt = backends.read_entry(entry.path)
    assert rebuilt is not None and rebuilt.artifact.stat().st_size == len(data)
    assert detector.backend == "onnx"


def test_interrupted_export_leaves_nothing_usable(
    own_cache: Path, yolo_pt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export that dies half-way leaves no entry under its final name, and no temporary folder."""
    if not backends.installed("onnx"):
        pytest.skip("onnx not installed")
    real = export.export_model

    def dies(model: object, backend: str, imgsz: int, folder: Path) -> Path:
        real(model, backend, imgsz, folder)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_model", dies)

    def listing() -> list[str]:  # an export's lock file (empty) stays, as a run folder's does
        return sorted(p.name for p in backends.exports_dir().iterdir() if not p.name.endswith(".lock"))

    before = listing()
    with pytest.raises(KeyboardInterrupt):
        backends.load(resolve(str(yolo_pt), "yolo"), _options("yolo", imgsz=96), _plan("onnx"))
    assert listing() == before


def _record_parity(entry: backends.CacheEntry, parity: Parity) -> None:
    """Write a parity result into an entry's manifest, as a measurement on another machine might have."""
    entry.manifest["parity"] = {parity.precision: parity.to_dict()}
    cache.write_manifest(entry)


@needs_onnx
def test_parity_failure_falls_back_to_torch_unless_explicit(own_cache: Path, yolo_pt: Path) -> None:
    _record_parity(_yolo_onnx_entry(), Parity(10, 4, 0.7, 0.3, "fp32"))
    ref = resolve(str(yolo_pt), "yolo")
    auto_warnings: list[str] = []
    only_onnx = {"torch": True, "onnx": True, "openvino": False}
    auto = backends.load(ref, _options("yolo"), _plan("auto", available=only_onnx), auto_warnings.append)
    assert auto.backend == "torch"
    [message] = auto_warnings
    assert "4/10 boxes matched" in message and "falling back to PyTorch" in message
    explicit_warnings: list[str] = []
    explicit = backends.load(ref, _options("yolo"), _plan("onnx"), explicit_warnings.append)
    assert explicit.backend == "onnx"
    assert len(explicit_warnings) == 1 and "falling back" not in explicit_warnings[0]


@needs_openvino
def test_openvino_bf16_is_the_default_only_where_it_holds(own_cache: Path, yolo_pt: Path) -> None:
    entry = _entry("openvino", "yolo")
    ref = resolve(str(yolo_pt), "yolo")
    default = backends.load(ref, _options("yolo"), _plan("openvino"))
    assert default.precision == ("bf16" if loading._cpu_supports_bf16() else "fp32")
    _record_parity(entry, Parity(10, 3, 0.5, 0.2, "bf16"))  # bf16 seen to drift: fp32 becomes the default
    assert backends.load(ref, _options("yolo"), _plan("openvino")).precision == "fp32"
    assert backends.load(ref, _options("yolo"), _plan("openvino", "fp32")).precision == "fp32"


# --- the command line --------------------------------------------------------------------------------


def _cli(weights: Path, family: str, folder: Path, out: Path, *args: str) -> object:
    command = ["yolo", "image"] if family == "yolo" else ["image"]
    argv = [*command, str(folder), "-m", str(weights), "--imgsz", str(SMALL_IMGSZ), "-o", str(out), "-q"]
    return runner.invoke(app, [*argv, "--conf", str(CONF[family]), *args])


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_cli_backend_records_backend_and_precision(
    backend: str, shared_cache: Path, yolo_pt: Path, images: Path, tmp_path: Path, count_exports: list[str]
) -> None:
    result = _cli(yolo_pt, "yolo", images, tmp_path / "out", "--backend", backend)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rows = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert len(rows) == 4 and all(r["backend"] == backend and r["detections"] for r in rows)
    assert {r["precision"] for r in rows} <= {"fp32", "bf16"}
    assert count_exports == []


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_video_runs_on_an_exported_backend(
    backend: str, shared_cache: Path, yolo_pt: Path, tmp_path: Path, count_exports: list[str]
) -> None:
    from conftest import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=4)
    argv = [
        "yolo",
        "video",
        str(clip),
        "-m",
        str(yolo_pt),
        "--imgsz",
        str(SMALL_IMGSZ),
        "-o",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, [*argv, "--conf", str(CONF["yolo"]), "--backend", backend, "-q"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(tmp_path / "o" / "frames.jsonl")
    assert [r["frame"] for r in rows] == [0, 1, 2, 3]
    assert all(r["backend"] == backend and r["detections"] for r in rows)
    assert count_exports == []  # the session's export was reused


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_compare_runs_every_model_on_the_same_backend(
    backend: str, shared_cache: Path, rtdetr_pt: Path, yolo_pt: Path, images: Path, tmp_path: Path
) -> None:
    argv = ["compare", str(images / "top.png"), "-m", f"{rtdetr_pt},{yolo_pt}", "--imgsz", str(SMALL_IMGSZ)]
    argv.append("--no-memory")  # a child process per model; measured in test_cli_compare
    result = runner.invoke(
        app, [*argv, "--backend", backend, "--warmup", "0", "-o", str(tmp_path / "c"), "-q"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert [m["info"]["backend"] for m in report["models"]] == [backend, backend]
    assert all(m["info"]["params_m"] > 0.1 and m["info"]["gflops"] > 0 for m in report["models"])  # manifest


@pytest.mark.parametrize("backend", [*BACKEND_PARAMS, "torch", "auto"])
def test_a_ray_worker_plans_the_backend_on_its_own_machine(
    backend: str, shared_cache: Path, yolo_pt: Path, tmp_path: Path
) -> None:
    """What a Ray worker loads, from the backend as asked (run in this process: the actor class is a
    plain class; test_executors runs it on a real Ray)."""
    from detect_cli.executors import BatchWorker, WorkerSpec, WorkSpec

    ref = resolve(str(yolo_pt), "yolo")
    work = WorkSpec(tmp_path / "out", backend=backend)
    worker = BatchWorker(WorkerSpec(ref, _options("yolo"), work))
    assert worker.ready() is None and worker.detector is not None
    want = {"auto": "openvino" if backends.installed("openvino") else "onnx"}.get(backend, backend)
    assert worker.detector.backend == want
    assert (type(worker.detector).__name__ == "ExportedDetector") == (want != "torch")


def test_two_runs_never_export_the_same_model_at_once(
    yolo_pt: Path, count_exports: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loads at once on an empty cache (two runs, or two Ray workers on one node): one exports, the
    other waits for it, says so, and uses its export."""
    import threading

    if not backends.installed("onnx"):
        pytest.skip("onnx not installed")
    real = export.export_model  # count_exports' counter around the real exporter
    exporting = threading.Event()

    def announcing(*args: object) -> Path:
        exporting.set()
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "export_model", announcing)
    ref = resolve(str(yolo_pt), "yolo")
    notes: list[list[str]] = [[], []]
    loaded: list[object] = [None, None]

    def load(i: int) -> None:
        loaded[i] = backends.load(ref, _options("yolo"), _plan("onnx"), notes[i].append)

    first = threading.Thread(target=load, args=(0,))
    first.start()
    assert exporting.wait(60)
    load(1)  # starts while the first is exporting
    first.join(60)
    assert count_exports == ["onnx"]
    assert sum(n.startswith("exporting ") for n in notes[0] + notes[1]) == 1
    assert any(n.startswith("waiting for another run") for n in notes[1]), notes[1]
    assert all(getattr(d, "backend", None) == "onnx" for d in loaded)
    assert len([e for e in backends.cached_exports() if e.manifest["backend"] == "onnx"]) == 1


def test_cli_torch_backend_from_the_environment(
    yolo_pt: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETECT_BACKEND", "torch")
    result = _cli(yolo_pt, "yolo", images, tmp_path / "out")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rows = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert {(r["backend"], r["precision"]) for r in rows} == {("torch", "fp32")}
    assert not backends.exports_dir().exists()


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_cli_missing_backend_is_one_line_exit_2(
    backend: str, yolo_pt: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "availability", lambda: {"torch": True, "onnx": False, "openvino": False})
    result = runner.invoke(
        app,
        ["yolo", "image", str(images), "-m", str(yolo_pt), "--backend", backend, "-o", str(tmp_path / "o")],
    )
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: --backend {backend} needs"), result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "onnx", "--precision", "bf16"], "--precision bf16 is for --backend openvino"),
        (["--backend", "torch", "--precision", "fp16"], "--precision fp16 is for CUDA"),
        (["--backend", "tensorrt"], "Invalid value for '--backend'"),
    ],
)
def test_cli_bad_backend_options(
    yolo_pt: Path, images: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["yolo", "image", str(images), "-m", str(yolo_pt), *args], terminal_width=200)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_models_lists_and_clears_exports(own_cache: Path) -> None:
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)["exports"]
    on_disk = backends.cached_exports()
    assert len(listed) == len(on_disk) >= 1
    assert all(e["size_mb"] > 0 and e["imgsz"] == SMALL_IMGSZ for e in listed)
    leftover = backends.exports_dir() / f".{on_disk[0].path.name}.4242-0123abcd.part"
    leftover.mkdir()  # what a killed export leaves behind
    table = runner.invoke(app, ["models"], terminal_width=200).stdout
    assert "Cached exports" in table and "onnx" in table.lower()
    cleared = runner.invoke(app, ["models", "--clear-cache"])
    assert cleared.exit_code == 0 and f"removed {len(on_disk) + 1} cached exports" in cleared.stdout
    assert backends.cached_exports() == [] and list(backends.exports_dir().iterdir()) == []
    assert "No cached exports" in runner.invoke(app, ["models"]).stdout


def test_detector_records_torch_precision(yolo_pt: Path) -> None:
    detector = backends.load(resolve(str(yolo_pt), "yolo"), _options("yolo"), _plan("torch"))
    assert isinstance(detector, Detector) and (detector.backend, detector.precision) == ("torch", "fp32")


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("w/best.pt", None),
        ("rtdetr-l.yaml", None),
        ("w/best.onnx", "onnx"),
        ("w/best_openvino_model", "openvino"),
        ("w/best.engine", "tensorrt"),
    ],
)
def test_exported_kind(location: str, kind: str | None) -> None:
    assert backends.exported_kind(location) == kind


@needs_onnx
def test_an_exported_model_given_with_m_runs_as_is(
    own_cache: Path, tmp_path: Path, count_exports: list[str]
) -> None:
    onnx_file = tmp_path / "yolo11n-mine.onnx"
    shutil.copy(_yolo_onnx_entry().artifact, onnx_file)
    ref = resolve(str(onnx_file), "yolo")
    detector = backends.load(ref, _options("yolo"), _plan("auto"))
    assert detector.backend == "onnx" and count_exports == []
    with pytest.raises(BadOptionError, match="exported onnx model"):
        backends.load(ref, _options("yolo"), _plan("openvino"))


def _export_copy(entry: backends.CacheEntry, folder: Path) -> Path:
    """The export's folder as a user has it (`-m folder`), without the cache's manifest."""
    shutil.copytree(entry.artifact, folder, ignore=shutil.ignore_patterns(backends.COMPILED))
    return folder


def _given_export(backend: str, family: str, folder: Path) -> Path:
    """A cached export as a user has it, named so that its name does not say its family."""
    if backend == "openvino":
        return _export_copy(_entry(backend, family), folder / "best_openvino_model")
    folder.mkdir(parents=True)
    return Path(shutil.copy(_entry(backend, family).artifact, folder / "best.onnx"))


@pytest.mark.parametrize("family", ["rtdetr", "yolo"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_an_export_given_with_m_runs_like_a_cached_one_once_and_quietly(
    backend: str,
    family: str,
    shared_cache: Path,
    rtdetr_pt: Path,
    yolo_pt: Path,
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An export named with -m runs in detect's runtime, as the same export from the cache does: loaded
    once, its family and classes read from its metadata (its name says neither), the same boxes, and,
    under -q, not a line on stderr (ultralytics' loading lines included)."""
    import subprocess
    import sys

    from ultralytics.nn import autobackend

    given = _given_export(backend, family, tmp_path / "mine")
    fp32 = ("--backend", backend, "--precision", "fp32")
    cached = _cli(_weights(family, rtdetr_pt, yolo_pt), family, images, tmp_path / "cached", *fp32)
    assert cached.exit_code == 0, cached.output  # type: ignore[attr-defined]

    opened: list[object] = []
    ultralytics_loads: list[object] = []
    real_open, real_autobackend = loading.runtime.open_session, autobackend.AutoBackend.__init__
    monkeypatch.setattr(loading.runtime, "open_session", lambda *a: opened.append(a) or real_open(*a))
    monkeypatch.setattr(
        autobackend.AutoBackend,
        "__init__",
        lambda self, *a, **k: ultralytics_loads.append(a) or real_autobackend(self, *a, **k),
    )
    spied = _cli(given, "yolo", images, tmp_path / "spied", *fp32)  # `yolo`: the metadata says rtdetr
    assert spied.exit_code == 0, spied.output  # type: ignore[attr-defined]
    assert (len(opened), ultralytics_loads) == (1, [])

    argv = ["yolo", "image", str(images), "-m", str(given), "--imgsz", str(SMALL_IMGSZ), "-q"]
    argv += ["-o", str(tmp_path / "given"), "--conf", str(CONF[family]), *fp32]
    marker = tmp_path / "modules.txt"
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['detect', *{argv!r}]\n"
        "try:\n    runpy.run_module('detect_cli', run_name='__main__')\n"
        f"finally:\n    open({str(marker)!r}, 'w').write(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no "Loading ... for OpenVINO inference...", no "Using OpenVINO LATENCY mode"
    assert "torch" not in marker.read_text().split()

    def boxes(out: Path) -> list[tuple[str, list[dict[str, object]]]]:
        return sorted((r["source"], r["detections"]) for r in read_jsonl(out / "results.jsonl"))

    expected = boxes(tmp_path / "cached")
    assert any(d for _, d in expected)
    assert boxes(tmp_path / "given") == boxes(tmp_path / "spied") == expected
    assert {r["backend"] for r in read_jsonl(tmp_path / "given" / "results.jsonl")} == {backend}


@needs_openvino
def test_an_export_detect_cannot_run_itself_goes_through_ultralytics_with_a_note(
    shared_cache: Path, images: Path, tmp_path: Path
) -> None:
    """Without metadata.yaml nothing names the IR's classes: ultralytics runs it, and a note says why."""
    given = _given_export("openvino", "yolo", tmp_path / "mine")
    (given / "metadata.yaml").unlink()
    argv = [
        "yolo",
        "image",
        str(images),
        "-m",
        str(given),
        "--imgsz",
        str(SMALL_IMGSZ),
        "-o",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, [*argv, "--conf", str(CONF["yolo"]), "--backend", "openvino"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "runs through ultralytics" in line]
    assert len(notes) == 1 and "no metadata.yaml" in notes[0], result.stderr
    assert {r["backend"] for r in read_jsonl(tmp_path / "o" / "results.jsonl")} == {"openvino"}


@needs_openvino
def test_an_openvino_export_folder_is_known_by_its_ir_files(shared_cache: Path, tmp_path: Path) -> None:
    """A folder is not one file: its digest covers its .xml and .bin (names aside, metadata aside), so
    two exports differ, the same one renamed does not, and `-m folder` and `-m folder/x.xml` agree."""
    yolo = _export_copy(_entry("openvino", "yolo"), tmp_path / "a" / "best_openvino_model")
    rtdetr = _export_copy(_entry("openvino", "rtdetr"), tmp_path / "b" / "best_openvino_model")
    [xml] = yolo.glob("*.xml")
    identity = backends.weights_identity(resolve(str(yolo), "yolo"))
    assert identity is not None and len(identity) == 64
    assert backends.weights_identity(resolve(str(rtdetr), "yolo")) not in (identity, None)
    assert backends.weights_identity(resolve(str(xml), "yolo")) == identity
    renamed = tmp_path / "c" / "mine_openvino_model"
    shutil.copytree(yolo, renamed)
    for f in renamed.glob("*.*"):
        f.rename(f.with_stem("mine"))
    (renamed / "metadata.yaml").write_text("date: another day\n")
    assert backends.weights_identity(resolve(str(renamed), "yolo")) == identity
    retrained = xml.with_suffix(".bin").read_bytes()
    xml.with_suffix(".bin").write_bytes(retrained[:-4] + bytes(b ^ 1 for b in retrained[-4:]))
    assert backends.weights_identity(resolve(str(yolo), "yolo")) != identity  # same .xml, other weights
    assert (
        not (shared_cache / cache.DIGESTS).exists()
        or identity not in (shared_cache / cache.DIGESTS).read_text()
    )


@needs_onnx
def test_an_onnx_file_given_with_m_is_known_by_its_sha256(shared_cache: Path, tmp_path: Path) -> None:
    import hashlib

    onnx_file = tmp_path / "best.onnx"
    shutil.copy(_yolo_onnx_entry().artifact, onnx_file)
    expected = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert backends.weights_identity(resolve(str(onnx_file), "yolo")) == expected


@needs_openvino
def test_records_name_the_openvino_export_and_resume_refuses_another(
    shared_cache: Path, tmp_path: Path, images: Path
) -> None:
    """Begun with runA/best_openvino_model, resumed with runB/best_openvino_model (the same name): the
    records name export A by content, B is refused in one line whether it is another model or A's
    network with other weights (the same .xml), and A itself resumes."""
    a = _export_copy(_entry("openvino", "yolo"), tmp_path / "runA" / "best_openvino_model")
    other_model = _export_copy(_entry("openvino", "rtdetr"), tmp_path / "runB" / "best_openvino_model")
    retrained = _export_copy(_entry("openvino", "yolo"), tmp_path / "runC" / "best_openvino_model")
    [bin_file] = retrained.glob("*.bin")
    data = bin_file.read_bytes()
    bin_file.write_bytes(data[:-4] + bytes(b ^ 1 for b in data[-4:]))
    out = tmp_path / "out"
    late = images / "top.png"
    late.rename(tmp_path / "late.png")  # added after the first run
    ov = ("--backend", "openvino")
    first = _cli(a, "yolo", images, out, *ov)
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    digest = backends.weights_identity(resolve(str(a), "yolo"))
    records = read_jsonl(out / "results.jsonl")
    name = "best_openvino_model"
    assert digest and {(r["model"], r["weights_sha256"]) for r in records} == {(name, digest)}
    (tmp_path / "late.png").rename(late)
    before = (out / "results.jsonl").read_bytes()
    for b in (other_model, retrained):
        refused = _cli(b, "yolo", images, out, *ov, "--resume")
        assert refused.exit_code == 2, refused.output  # type: ignore[attr-defined]
        errors = [x for x in refused.stderr.splitlines() if x.startswith("error:")]  # type: ignore[attr-defined]
        assert len(errors) == 1 and f"was made with {name} (weights sha256 {digest[:12]})" in errors[0]
        assert (out / "results.jsonl").read_bytes() == before
    same = _cli(a, "yolo", images, out, *ov, "--resume")
    assert same.exit_code == 0, same.output  # type: ignore[attr-defined]
    assert "do not say which weights" not in same.stderr  # type: ignore[attr-defined]
    records = read_jsonl(out / "results.jsonl")
    assert len(records) == 4 and {r["weights_sha256"] for r in records} == {digest}


def test_the_cache_keeps_under_its_cap_dropping_the_least_recently_used(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    entries = backends.cached_exports()
    assert len(entries) >= 2
    for age, entry in enumerate(reversed(entries)):  # the first entry is the one used last
        stamp = 1_700_000_000 + 1000 * age
        os.utime(entry.path / "manifest.json", (stamp, stamp))
    newest, oldest = entries[0], entries[-1]
    monkeypatch.setenv("DETECT_EXPORT_CACHE_MAX", str(sum(e.size_bytes for e in entries) - 1))
    assert backends.evict_exports() == [oldest.path]  # one less fits: the least recently used goes
    assert newest.path in {e.path for e in backends.cached_exports()}
    monkeypatch.setenv("DETECT_EXPORT_CACHE_MAX", "0")
    assert backends.evict_exports(keep=newest.path) == []  # the export in use is never removed
    assert [e.path for e in backends.cached_exports()] == [newest.path]
    monkeypatch.setenv("DETECT_EXPORT_CACHE_MAX", "1.5G")
    assert backends.cache_limit() == int(1.5 * 1024**3)


@pytest.mark.parametrize("text", ["garbage", "4GB", "-5", "-1G", "inf", "nan", "1e400", "\u0663", "\u00b2G"])
def test_a_bad_cache_cap_is_refused_before_any_export(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DETECT_EXPORT_CACHE_MAX", text)
    with pytest.raises(BadOptionError, match="DETECT_EXPORT_CACHE_MAX"):
        backends.cache_limit()

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported despite a bad cap")

    monkeypatch.setattr(loading, "_ready_export", no_export)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not read")
    ref = resolve(str(weights), "yolo")
    with pytest.raises(BadOptionError, match="DETECT_EXPORT_CACHE_MAX"):
        backends.load(ref, PredictOptions(), _plan("openvino"))


def test_weights_hash_is_remembered_by_path_size_and_mtime(
    yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setenv("DETECT_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "w.pt"
    shutil.copy(yolo_pt, weights)
    reads: list[Path] = []
    real = cache._sha256
    monkeypatch.setattr(cache, "_sha256", lambda p: reads.append(p) or real(p))
    first = backends.weights_digest(str(weights))
    assert backends.weights_digest(str(weights)) == first and reads == [weights]  # read once
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")  # changed: hashed again
    assert backends.weights_digest(str(weights)) != first and len(reads) == 2


def test_configs_ultralytics_ships_by_scale_have_their_own_digest() -> None:
    """`yolo11n.yaml` is no file: ultralytics reads yolo11.yaml at scale n. Its export is keyed by what
    is built, so n and s never share a cached export, and the key is stable."""
    digests = {c: backends.weights_digest(c) for c in ("yolo11n.yaml", "yolo11s.yaml", "yolo26n.yaml")}
    assert len(set(digests.values())) == 3
    assert backends.weights_digest("yolo11n.yaml") == digests["yolo11n.yaml"]


# --- an export that cannot be made --------------------------------------------------------------------


def _full_disk(*args: object, **kwargs: object) -> None:
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["export_model", "_export_entry"])
def test_auto_runs_on_pytorch_when_the_export_cannot_be_made(
    where: str, yolo_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or an exporter bug) under --backend auto: the run goes on with PyTorch, said
    once; with the backend named, a one-line ExportError. Nothing half-made stays in the cache."""
    from detect_cli.errors import ExportError

    monkeypatch.setenv("DETECT_CACHE_DIR", str(tmp_path / "cache"))
    if where == "export_model":

        def failing(*args: object, **kwargs: object) -> None:
            raise ExportError("export to openvino failed: RuntimeError: basic_ios::clear: iostream error")

        monkeypatch.setattr(export, "export_model", failing)
    else:  # the cache's own writes (folder, manifest, rename) hit the full disk
        monkeypatch.setattr(loading, "export_entry", _full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 5 * 2**20))
    ref = resolve(str(yolo_pt), "yolo")
    options = PredictOptions(imgsz=SMALL_IMGSZ)
    warnings: list[str] = []
    auto = backends.plan("auto", "cpu", available={"onnx": True, "openvino": True})
    assert auto.backend == "openvino" and not auto.explicit
    detector = backends.load(ref, options, auto, warnings.append)
    assert detector.backend == "torch"
    assert len(warnings) == 2, warnings  # "exporting …", then why it runs on PyTorch
    assert "running on PyTorch instead" in warnings[-1] and "only 5 MB free" in warnings[-1]
    with pytest.raises(ExportError, match="only 5 MB free"):
        backends.load(ref, options, _plan("openvino"), warnings.append)
    assert backends.cached_exports() == []
    assert not [p for p in (tmp_path / "cache" / "exports").iterdir() if p.suffix == ".part"]


def _made_export(root: Path, key: str, files: dict[str, bytes]) -> Path:
    """An export folder as the cache writes it: its files and a manifest naming them."""
    folder = root / key
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    manifest = {
        "version": backends.MANIFEST_VERSION,
        "key": key,
        "artifact": next(iter(files)),
        "files": {rel: len(data) for rel, data in files.items()},
        "sha256": {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


KEY_A, KEY_B = "0123456789abcdef-160-onnx-fp32", "fedcba9876543210-640-openvino-fp32"


def test_clear_cache_deletes_only_what_the_cache_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DETECT_CACHE_DIR pointed at a folder that also holds the user's files: --clear-cache removes the
    exports (by their manifests), a killed export's temporary folder and the lock files, and names what
    it left alone (it used to delete every entry under exports/)."""
    cache = tmp_path / "mine"
    root = cache / "exports"
    monkeypatch.setenv("DETECT_CACHE_DIR", str(cache))
    notes = root / "notes.txt"
    root.mkdir(parents=True)
    notes.write_text("mine")
    bus = make_image(root / "photos" / "bus.jpg")
    outside = make_image(tmp_path / "elsewhere" / "keep.jpg")
    (root / "linked").symlink_to(outside.parent)
    _made_export(root, KEY_A, {"model.onnx": b"onnx"})
    b = _made_export(root, KEY_B, {"m_openvino_model/m.xml": b"<xml/>", "m_openvino_model/m.bin": b"bin"})
    (b / "compiled").mkdir()
    (b / "compiled" / "blob").write_bytes(b"compiled")
    (b / "m_openvino_model" / "my-notes.txt").write_text("not named by the manifest")
    partial = root / f".{KEY_A}.4242-0123abcd.part"
    partial.mkdir()
    (partial / "model.onnx").write_bytes(b"half")
    (root / f".{KEY_A}.lock").write_text("")
    cleared = runner.invoke(app, ["models", "--clear-cache"])
    assert cleared.exit_code == 0, cleared.output
    assert "removed 3 cached exports" in cleared.stdout
    left = cleared.stdout.split("left alone", 1)[1]
    assert all(name in left for name in ("notes.txt", "photos", "linked", "my-notes.txt")), cleared.stdout
    assert notes.read_text() == "mine" and bus.is_file() and outside.is_file()
    assert sorted(p.name for p in root.iterdir()) == [KEY_B, "linked", "notes.txt", "photos"]
    assert [p.relative_to(b).as_posix() for p in b.rglob("*")] == [
        "m_openvino_model",
        "m_openvino_model/my-notes.txt",
    ]


def test_clear_cache_leaves_an_export_another_process_is_making(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second process holds KEY_A's export lock (it is exporting now): --clear-cache leaves that key's
    temporary folder and lock whole and says so, and clears the rest; once the export ends, all goes.
    It used to delete the folder the export was being written into, and its lock file."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    root = cache / "exports"
    monkeypatch.setenv("DETECT_CACHE_DIR", str(cache))
    root.mkdir(parents=True)
    _made_export(root, KEY_B, {"model.onnx": b"onnx"})
    partial = root / f".{KEY_A}.4242-0123abcd.part"
    partial.mkdir()
    (partial / "model.onnx").write_bytes(b"half written")
    lock = root / f".{KEY_A}.lock"
    holder = (
        "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        cleared = runner.invoke(app, ["models", "--clear-cache"])
        assert cleared.exit_code == 0, cleared.output
        assert "removed 1 cached exports" in cleared.stdout and "being made now" in cleared.stdout
        assert (partial / "model.onnx").read_bytes() == b"half written" and lock.exists()
        assert not (root / KEY_B).exists()
    finally:
        proc.communicate("", timeout=30)
    again = runner.invoke(app, ["models", "--clear-cache"])
    assert again.exit_code == 0 and "being made now" not in again.stdout, again.output
    assert sorted(root.iterdir()) == []


@pytest.mark.parametrize("planted", ["fifo", "link"])
def test_a_lock_name_that_is_a_fifo_or_a_link_never_blocks_nor_is_followed(
    planted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO (opening one blocks until a writer comes) or a symlink to an input at an export's lock
    name: taking the lock and --clear-cache both go on at once, and the input is untouched."""
    import os
    import threading

    monkeypatch.setenv("DETECT_CACHE_DIR", str(tmp_path / "cache"))
    root = cache.exports_dir()
    root.mkdir(parents=True)
    lock = root / f".{KEY_A}.lock"
    victim = make_image(tmp_path / "in" / "a.jpg")
    before = victim.read_bytes()
    if planted == "fifo":
        os.mkfifo(lock)
    else:
        lock.symlink_to(victim)
    done: list[str] = []

    def both() -> None:
        with cache.export_lock(KEY_A):
            done.append("locked")
        cache.clear_exports()
        done.append("cleared")

    thread = threading.Thread(target=both, daemon=True)
    thread.start()
    thread.join(20)
    assert done == ["locked", "cleared"], done  # before the fix: stuck opening the FIFO
    assert victim.read_bytes() == before


def test_an_export_lock_whose_file_was_replaced_while_waiting_locks_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process waits for a key's lock; meanwhile the lock file is removed (as --clear-cache does while
    holding it). The waiter must end up holding the file now at that path, not the removed one, or a
    third process would lock a new file and make the same export beside it."""
    import fcntl
    import threading

    monkeypatch.setenv("DETECT_CACHE_DIR", str(tmp_path / "cache"))
    root = cache.exports_dir()
    root.mkdir(parents=True)
    path = root / f".{KEY_A}.lock"
    first = path.open("a")
    fcntl.flock(first, fcntl.LOCK_EX)
    waited, inside, leave = threading.Event(), threading.Event(), threading.Event()

    def waiter() -> None:
        with cache.export_lock(KEY_A, waited.set):
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert waited.wait(30)  # it found the lock held and waits
        path.unlink()
        first.close()  # released: the waiter wakes on the removed file, and must move to a new one
        assert inside.wait(30)
        with path.open("a") as third:  # a third process: the lock at the path must be held
            with pytest.raises(BlockingIOError):
                fcntl.flock(third, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        leave.set()
        thread.join(30)


def test_removing_an_export_never_leaves_its_folder(tmp_path: Path) -> None:
    """A manifest naming a file outside its folder ("..", or through a linked sub-folder): not deleted."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.onnx").write_text("keep")
    folder = _made_export(tmp_path / "exports", KEY_A, {"model.onnx": b"onnx"})
    (folder / "sub").symlink_to(elsewhere)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].update({"../../victim.txt": 4, "sub/x.onnx": 4})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    backends.remove_entry(folder)
    assert victim.read_text() == "keep" and (elsewhere / "x.onnx").read_text() == "keep"
    assert not (folder / "model.onnx").exists()


def test_eviction_removes_only_what_the_manifest_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The least recently used export goes, by its manifest: a compiled/ that is a link to the user's
    folder loses the link, not what it points to."""
    import os

    root = backends.exports_dir()
    old = _made_export(root, KEY_A, {"model.onnx": b"onnx" * 100})
    new = _made_export(root, KEY_B, {"m.xml": b"<xml/>"})
    os.utime(old / "manifest.json", (1_700_000_000, 1_700_000_000))
    kept = make_image(tmp_path / "photos" / "bus.jpg")
    (old / "compiled").symlink_to(kept.parent)
    users = _made_export(tmp_path / "users", "export-i-keep", {"model.onnx": b"mine"})
    (root / "aaaaaaaaaaaaaaaa-160-onnx-fp32").symlink_to(users)  # a link is no export of this cache
    monkeypatch.setenv("DETECT_EXPORT_CACHE_MAX", "10")
    assert backends.evict_exports(keep=new) == [old]
    assert not old.exists() and new.is_dir() and kept.is_file()
    assert (users / "model.onnx").read_bytes() == b"mine"


@needs_openvino
@pytest.mark.parametrize(
    ("command", "presses"), [("image", 1), ("image", 2), ("video", 1)], ids=["image", "image-twice", "video"]
)
def test_ctrl_c_during_a_first_export_stops_even_when_started_with_sigint_ignored(
    command: str, presses: int, yolo_pt: Path, tmp_path: Path
) -> None:
    """A real SIGINT to a real run while it exports, the run started as a script's background job is
    (`cmd &`: SIGINT ignored, which the child inherits): exit 130, one `error: interrupted` line, no
    export (whole or half-written) in the cache and no run folder. The run used to carry on, export
    and process every input, exit 0: Python leaves an inherited ignored SIGINT alone, and only the
    run loop installed a handler of its own."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import make_video

    source = make_image(tmp_path / "in" / "a.jpg") if command == "image" else make_video(tmp_path / "v.mp4")
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    env = {**os.environ, "DETECT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "detect_cli", command, str(source), "-m", str(yolo_pt)]
    argv += ["--backend", "openvino", "--imgsz", "96", "-o", str(out)]
    child = subprocess.Popen(
        argv,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` in a script starts it
    )
    assert child.stderr is not None
    try:
        seen, deadline = "", time.monotonic() + 120
        while "exporting" not in seen and time.monotonic() < deadline and child.poll() is None:
            seen += child.stderr.readline()
        assert "exporting" in seen, seen
        exports = cache_dir / "exports"
        while time.monotonic() < deadline and not any(p.name.endswith(".part") for p in exports.iterdir()):
            time.sleep(0.02)  # the export's temporary folder exists: the exporter is at work
        for _ in range(presses):
            child.send_signal(signal.SIGINT)
            time.sleep(0.05)
        rest = child.stderr.read()
        code = child.wait(timeout=120)
    finally:
        child.kill()
        child.wait()
    assert code == 130, seen + rest
    assert [line for line in rest.splitlines() if line.startswith("error:")] == ["error: interrupted"], rest
    assert "Traceback" not in seen + rest
    assert [p.name for p in exports.iterdir() if not p.name.endswith(".lock")] == []
    assert not out.exists()


@needs_openvino
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("part", ["metadata.yaml", "model.xml"])
def test_an_export_given_with_m_whose_files_are_fifos_is_one_line_not_a_hang(
    part: str, shared_cache: Path, images: Path, tmp_path: Path
) -> None:
    """A FIFO where an exported model's metadata.yaml or .xml should be: reading it would wait for a
    writer for ever. A real `detect` process: one `error:` line naming it, exit 2, no hang."""
    given = _given_export("openvino", "yolo", tmp_path / "mine")
    target = given / "metadata.yaml" if part == "metadata.yaml" else next(given.glob("*.xml"))
    target.unlink()
    os.mkfifo(target)
    argv = ["yolo", "image", images, "-m", given, "--imgsz", SMALL_IMGSZ, "--backend", "openvino"]
    done = subprocess.run(
        [sys.executable, "-m", "detect_cli", *map(str, argv), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert str(target) in line and "not a regular file" in line, done.stderr
    assert "Traceback" not in done.stderr
