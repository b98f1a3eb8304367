"""Inference backends: PyTorch, or the same model exported once to ONNX Runtime or OpenVINO for fast CPU runs.

Exports go through ultralytics' own exporter into a per-user cache, one folder per (weights content,
imgsz, backend, precision). A folder is built under a temporary name and renamed into place, and holds a
manifest with the size and hash of every file, so a half-written or damaged export is never used: it is
rebuilt. Right after an export, the exported model and the PyTorch model run on one picture and their
detections are compared (`Parity`); an `auto` choice that fails that check falls back to PyTorch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.backends.cache import (
    COMPILED,
    MANIFEST_VERSION,
    CacheEntry,
    cache_key,
    cache_limit,
    commit_entry,
    evict_exports,
    export_lock,
    exports_dir,
    file_hashes,
    file_table,
    read_entry,
    space_note,
    weights_digest,
    write_manifest,
)
from detect_cli.backends.parity import Parity, measure_parity
from detect_cli.backends.planning import Backend, Plan
from detect_cli.errors import BadOptionError, ExportError, ModelError
from detect_cli.models import (
    Detector,
    ModelRef,
    PredictOptions,
    WeightsUnavailableError,
    coco_names,
    fetch_weights,
    has_one2one_head,
    official_config,
    quiet_stdout,
    resolve_classes,
    stand_in,
)
from detect_cli.models import load as load_torch
from detect_cli.quantize import (
    Calibration,
    CalibrationError,
    Pictures,
    import_nncf,
    quantize_openvino,
)
from detect_cli.results import Note, busy
from detect_cli.runtime import Mode

if TYPE_CHECKING:
    pass


Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


# --- exporting -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ultralytics' log lines and tracing warnings kept off the user's terminal while exporting/loading.
    Its errors too: a failure comes back as an exception, which the caller says in its own words."""
    import logging
    import warnings

    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.CRITICAL)
    try:
        with quiet_stdout(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)


def network_size(net: Any, imgsz: int) -> dict[str, Any]:
    """A PyTorch network's parameters (millions) and GFLOPs at an imgsz x imgsz input, from ultralytics'
    own counters, and whether it was Conv+BN-fused when counted. Kept in an export's manifest, so a run on
    the export reports them without importing torch."""
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    is_fused = getattr(net, "is_fused", None)
    return {
        "params_m": get_num_params(net) / 1e6,
        "gflops": get_flops(net, imgsz) or None,  # 0.0 means "could not count"
        "fused": bool(is_fused()) if callable(is_fused) else None,
    }


def export_model(torch_model: Any, backend: Backend, imgsz: int, folder: Path) -> Path:
    """Export a loaded ultralytics model into `folder` (fp32, fixed batch 1 and square imgsz input)."""
    # The exporter writes next to the weights it was loaded from; point it at our folder instead.
    torch_model.model.pt_path = str(folder / "model.pt")
    kwargs: dict[str, Any] = {"format": backend, "imgsz": imgsz, "device": "cpu", "batch": 1}
    if has_one2one_head(torch_model):
        kwargs["nms"] = False  # export the end-to-end head (YOLO26), which is what PyTorch runs
    if backend == "onnx":
        kwargs["simplify"] = importlib.util.find_spec("onnxslim") is not None
    try:
        with _quiet():
            return Path(torch_model.export(**kwargs))
    except Exception as e:  # the exporter raises many types; each means this backend cannot be built
        raise ExportError(f"export to {backend} failed: {type(e).__name__}: {e}") from e


# --- loading ---------------------------------------------------------------------------------------


def _export_entry(
    ref: ModelRef, torch_detector: Detector, backend: Backend, imgsz: int, digest: str, key: str
) -> CacheEntry:
    """Export into a temporary folder, write its manifest, and rename it into place."""
    root = exports_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
    tmp.mkdir()
    try:
        size = network_size(torch_detector.model.model, imgsz)  # before the exporter touches it
        artifact = export_model(torch_detector.model, backend, imgsz, tmp)
        files = file_table(tmp)
        import ultralytics

        entry = CacheEntry(
            tmp,
            {
                "version": MANIFEST_VERSION,
                "key": key,
                "model": ref.name,
                "family": ref.family,
                "source": ref.location,
                "weights_sha256": digest,
                "imgsz": imgsz,
                "backend": backend,
                "precision": "fp32",
                "artifact": artifact.relative_to(tmp).as_posix(),
                "files": files,
                "sha256": file_hashes(tmp, files),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "ultralytics": ultralytics.__version__,
                "parity": {},
                "names": {str(k): v for k, v in torch_detector.names.items()},
                "size": size,
            },
        )
        write_manifest(entry)
        return commit_entry(entry, root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _quantize_entry(
    ref: ModelRef, source: CacheEntry, calibration: Calibration, calib_digest: str, key: str, warn: Warn
) -> CacheEntry:
    """Quantize the fp32 OpenVINO export `source` to INT8 on the calibration pictures (quantize.py)
    into a temporary folder, write its manifest, and rename it into place; nothing is left behind
    when it fails or is interrupted (Ctrl-C)."""
    imgsz = int(source.manifest["imgsz"])
    family = source.manifest.get("family", ref.family)
    pictures = Pictures(calibration.files, imgsz, stretch=family == "rtdetr").checked()
    if pictures.skipped:
        name, why = pictures.skipped[0]
        if not len(pictures):
            raise CalibrationError(
                f"none of the {len(pictures.skipped)} calibration pictures ({calibration.origin}) can be "
                f"read (first: {name}: {why})"
            )
        warn(
            f"{len(pictures.skipped)} calibration picture(s) cannot be read and are left out ({name}: {why})"
        )
    nncf = import_nncf()  # before the folder: importing it takes seconds (torch among it), no part of it

    root = exports_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
    tmp.mkdir()
    try:
        warn(
            f"quantizing {ref.name} to int8 on {len(pictures)} pictures ({calibration.origin}): once, "
            f"cached in {root}; this takes a few minutes at imgsz 640"
        )
        xml = source.artifact if source.artifact.suffix == ".xml" else next(source.artifact.glob("*.xml"))
        start = time.perf_counter()
        target = quantize_openvino(
            xml, tmp / "model_int8_openvino_model" / "model.xml", pictures, family == "rtdetr"
        )
        seconds = time.perf_counter() - start
        files = file_table(tmp)
        entry = CacheEntry(
            tmp,
            {
                # What the fp32 export knows of the model (its network's size too, where recorded)
                **{
                    k: source.manifest[k]
                    for k in ("model", "family", "source", "weights_sha256", "names", "size")
                    if k in source.manifest
                },
                "version": MANIFEST_VERSION,
                "key": key,
                "imgsz": imgsz,
                "backend": "openvino",
                "precision": "int8",
                "artifact": target.parent.relative_to(tmp).as_posix(),
                "files": files,
                "sha256": file_hashes(tmp, files),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "ultralytics": source.manifest.get("ultralytics"),
                "nncf": nncf.__version__,
                "calibration": {
                    "sha256": calib_digest,
                    "pictures": len(pictures),
                    "skipped": len(pictures.skipped),
                    "origin": calibration.origin,
                    "seconds": round(seconds, 1),
                },
                "parity": {},
            },
        )
        write_manifest(entry)
        return commit_entry(entry, root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _ready_int8(
    ref: ModelRef,
    options: PredictOptions,
    plan: Plan,
    source: CacheEntry,
    torch_detector: Detector | None,
    warn: Warn,
) -> tuple[Detector, Parity, Detector | None]:
    """The INT8 export of the fp32 OpenVINO export `source` for the plan's calibration pictures (made
    now when missing), loaded, and its parity with PyTorch (held to the INT8 tolerance)."""
    if plan.calibration is None:
        raise CalibrationError("--precision int8 needs calibration pictures: pass --calibration DIR")
    calib = plan.calibration.digest
    key = cache_key(source.manifest["weights_sha256"], options.imgsz, "openvino", "int8", calib)
    entry = read_entry(exports_dir() / key)
    if entry is None:
        if (exports_dir() / key).exists():
            warn(f"the cached int8 export of {ref.name} is incomplete or damaged; quantizing it again")
        entry = _quantize_entry(ref, source, plan.calibration, calib, key, warn)
        for gone in evict_exports(keep=entry.path):
            warn(f"export cache over {cache_limit() / 2**30:g} GiB: removed {gone.name}, used least recently")
    entry.touch()
    detector = _load_exported(ref, entry, options, "int8", plan.mode)
    parity = entry.parity("int8")
    if parity is None:
        torch_detector = torch_detector or load_torch(ref, replace_device(options))
        parity = measure_parity(torch_detector, detector, options.imgsz)
        entry.manifest.setdefault("parity", {})["int8"] = parity.to_dict()
        write_manifest(entry)
    return detector, parity, torch_detector


def _cpu_supports_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _load_exported(
    ref: ModelRef, entry: CacheEntry, options: PredictOptions, precision: str, mode: Mode = "latency"
) -> Detector:
    """A Detector over the exported model, run by its runtime directly (runtime.py: no torch, no
    ultralytics); OpenVINO is compiled at the precision asked for, through the compiled-model cache."""
    from detect_cli import runtime

    backend: Backend = entry.manifest["backend"]
    try:
        session = runtime.open_session(entry.artifact, backend, precision, entry.path / COMPILED, mode)
        names = entry.manifest.get("names") or runtime.export_names(entry.artifact, session)
        if official_config(ref):  # exported before its classes were named as the official model's
            names = coco_names()
    except Exception as e:  # a runtime refusing the file: rebuilt on the next run (see `load`)
        raise ExportError(
            f"cannot load the cached {backend} export of {ref.name}: {type(e).__name__}: {e}"
        ) from e
    end2end = ref.family == "yolo" and runtime.is_end2end(session)
    detector = runtime.ExportedDetector(
        ref, session, {int(k): v for k, v in names.items()}, options, backend, end2end
    )
    detector.network_size = dict(entry.manifest.get("size") or {})
    return detector


def weights_or_stand_in(ref: ModelRef, plan: Plan, warn: Warn = _ignore) -> ModelRef:
    """`ref` itself when its weights are here or can be fetched. When they cannot and the plan allows
    it (`--offline-fallback`), the model's untrained config instead, said once, loudly; else the one-line
    ModelError from `fetch_weights`."""
    if not (ref.official and plan.offline_fallback):
        return ref
    try:
        fetch_weights(ref)
    except WeightsUnavailableError as e:
        substitute = stand_in(ref)
        reason = e.reason
        warn(
            f"RANDOM WEIGHTS: cannot get {Path(ref.location).name} for {ref.name} ({reason}); "
            f"--offline-fallback runs {substitute.location} instead: its speed and memory are real, its "
            f"boxes are meaningless. For real detections put {Path(ref.location).name} in "
            f"{Path(ref.location).parent}/ (or pass -m path/to/{Path(ref.location).name})"
        )
        return substitute
    return ref


def weights_identity(ref: ModelRef) -> str | None:
    """What `ref` loads, by content (`weights_digest`: the file's sha256, or a config's digest, which
    differs from any trained weights'); None for what is not one file (an OpenVINO export's folder) or
    cannot be read."""
    try:
        location = str(fetch_weights(ref)) if ref.official else ref.location
        # Not remembered: naming the weights in records must not write to the cache folder.
        return weights_digest(location, remember=False) if Path(location).is_file() or ref.untrained else None
    except (OSError, ValueError, ModelError):
        return None


def load(ref: ModelRef, options: PredictOptions, plan: Plan, warn: Warn = _ignore) -> Detector:
    """Load `ref` on the backend the plan names (exporting it, once, cached, when that is not torch);
    the detector knows its weights by content (`weights_sha256`), which each record carries."""
    detector = _load(ref, options, plan, warn)
    if detector.weights_sha256 is None:
        detector.weights_sha256 = weights_identity(detector.ref)
    return detector


def _load(ref: ModelRef, options: PredictOptions, plan: Plan, warn: Warn = _ignore) -> Detector:
    ref = weights_or_stand_in(ref, plan, warn)
    if (made := exported_kind(ref.location)) is not None:  # already exported (-m model.onnx): run it as is
        if plan.precision == "int8":
            raise BadOptionError(
                f"{ref.location} is already exported; --precision int8 quantizes a .pt or .yaml model"
            )
        if plan.explicit and plan.backend != made:
            raise BadOptionError(f"{ref.location} is an exported {made} model; it runs with --backend {made}")
        detector = load_torch(ref, options)
        detector.backend = made
        return detector
    backend = plan.backend
    if backend == "torch":
        return load_torch(ref, options)
    cache_limit()  # a bad $DETECT_EXPORT_CACHE_MAX is said now, not after minutes of exporting
    location = str(fetch_weights(ref)) if ref.official else ref.location
    try:
        digest = weights_digest(location)
    except OSError as e:
        raise ModelError(f"cannot read model file {location}: {e.strerror or e}") from e
    key = cache_key(digest, options.imgsz, backend, "fp32")
    # One process at a time makes (or first checks) an export: two runs, or two Ray workers on one
    # node, never export the same model at once; the second finds the first's export when it gets in.
    try:
        with export_lock(
            key, lambda: warn(Note(f"waiting for another run that is exporting {ref.name} to {backend}"))
        ):
            detector, parity, torch_detector = _ready_export(ref, options, plan, digest, key, warn)
    except (ExportError, OSError) as e:  # a full disk, an exporter bug, a runtime refusing the file
        reason = str(e) if isinstance(e, ExportError) else f"cannot write the export cache: {e}"
        reason += space_note(exports_dir())
        if plan.explicit:
            raise ExportError(reason) from e
        warn(f"{reason}; running on PyTorch instead (pass --backend {backend} to insist)")
        return load_torch(ref, options)
    if not parity.ok:
        message = f"{backend} ({detector.precision}) detections differ from PyTorch: {parity.describe()}"
        if plan.explicit:
            warn(message)
        else:
            warn(message + "; falling back to PyTorch (pass --backend to use it anyway)")
            return torch_detector or load_torch(ref, options)
    return detector


def _ready_export(
    ref: ModelRef, options: PredictOptions, plan: Plan, digest: str, key: str, warn: Warn
) -> tuple[Detector, Parity, Detector | None]:
    """The export under `key` (made now if missing or damaged) loaded as planned, its parity with
    PyTorch (measured now on first use at this precision), and the PyTorch model if one was loaded."""
    backend = plan.backend
    entry = read_entry(exports_dir() / key)
    torch_detector: Detector | None = None
    if entry is None:
        if (exports_dir() / key).exists():
            warn(f"the cached {backend} export of {ref.name} is incomplete or damaged; exporting it again")
        doing = (
            f"exporting {ref.name} to {backend} at imgsz {options.imgsz} (once; cached in {exports_dir()})"
        )
        with busy(warn, doing):  # half a minute or more: never in silence
            torch_detector = load_torch(ref, replace_device(options))
            entry = _export_entry(ref, torch_detector, backend, options.imgsz, digest, key)

    entry.touch()  # the cache keeps what is used (least recently used exports go first)
    if torch_detector is not None:  # a new export grew the cache: keep it under its cap
        for gone in evict_exports(keep=entry.path):
            cap = f"{cache_limit() / 2**30:g} GiB"
            warn(Note(f"export cache over {cap}: removed {gone.name}, used least recently"))
    if plan.precision == "int8":
        return _ready_int8(ref, options, plan, entry, torch_detector, warn)
    precision = plan.precision or _default_precision(backend, entry)
    detector = _load_exported(ref, entry, options, precision, plan.mode)
    if plan.precision and detector.precision != plan.precision:
        warn(f"{backend} cannot run {plan.precision} on this CPU; running {detector.precision}")
    parity = entry.parity(detector.precision)
    if parity is None:  # first use of this export at this precision: measure, and remember
        with busy(warn, f"checking the {backend} {detector.precision} export against PyTorch (once)"):
            torch_detector = torch_detector or load_torch(ref, replace_device(options))
            parity = measure_parity(torch_detector, detector, options.imgsz)
        if plan.precision is None and detector.precision != "fp32" and not parity.ok:
            # The faster precision drifts: the default becomes fp32, checked the same way.
            entry.manifest.setdefault("parity", {})[detector.precision] = parity.to_dict()
            warn(f"{backend} {detector.precision} differs from PyTorch ({parity.describe()}); using fp32")
            detector = _load_exported(ref, entry, options, "fp32", plan.mode)
            parity = measure_parity(torch_detector, detector, options.imgsz)
        entry.manifest.setdefault("parity", {})[detector.precision] = parity.to_dict()
        write_manifest(entry)
    return detector, parity, torch_detector


def load_detector(
    ref: ModelRef,
    options: PredictOptions,
    plan: Plan,
    classes: str | None = None,
    warn: Warn | None = None,
) -> Detector:
    """Load the model as planned (exporting it once when that is ONNX or OpenVINO), then resolve
    `--classes` against its class names."""
    detector = load(ref, options, plan, warn or _ignore)
    if detector.weights_sha256 is None:  # a loader that does not set it (a stand-in for tests, say)
        detector.weights_sha256 = weights_identity(detector.ref)
    if classes:
        detector.options = replace(options, classes=resolve_classes(classes, detector.names))
    return detector


def exported_kind(location: str) -> str | None:
    """'onnx' or 'openvino' for a model that is already exported, else None (weights or a config)."""
    path = Path(location)
    if path.suffix == ".onnx":
        return "onnx"
    if path.name.endswith("_openvino_model") or path.suffix == ".xml":
        return "openvino"
    if path.suffix in (".pt", ".yaml", ".yml"):
        return None
    if path.is_dir():  # an export's folder: what it holds says which
        return "openvino" if any(path.glob("*.xml")) else "onnx" if any(path.glob("*.onnx")) else None
    return {".engine": "tensorrt", ".torchscript": "torchscript"}.get(
        path.suffix, path.suffix.lstrip(".") or None
    )


def replace_device(options: PredictOptions) -> PredictOptions:
    return replace(options, device="cpu", half=False)


def _default_precision(backend: Backend, entry: CacheEntry) -> str:
    """bf16 where OpenVINO can run it and it has not been seen to drift from PyTorch; else fp32."""
    if backend != "openvino" or not _cpu_supports_bf16():
        return "fp32"
    checked = entry.parity("bf16")
    return "bf16" if checked is None or checked.ok else "fp32"
