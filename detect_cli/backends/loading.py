"""Loading a model as the plan says (`load`, `load_detector`): PyTorch, or its ONNX/OpenVINO export
from the cache (made now, once, when missing or damaged), run by runtime/ without torch, and checked
against PyTorch on its first use at each precision (`Parity`). An `auto` choice whose export cannot be
made, or drifts from PyTorch, falls back to PyTorch; a backend named by the user is kept, or stops the
run with one line.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

from detect_cli import runtime
from detect_cli.backends.cache import (
    COMPILED,
    CacheEntry,
    cache_key,
    cache_limit,
    evict_exports,
    export_lock,
    exports_dir,
    read_entry,
    space_note,
    unusable,
    weights_digest,
    write_manifest,
)
from detect_cli.backends.export import Warn, export_entry, quantize_entry
from detect_cli.backends.parity import Parity, measure_parity
from detect_cli.backends.planning import Backend, Plan
from detect_cli.errors import BadOptionError, ExportError, ModelError
from detect_cli.models import (
    Detector,
    Family,
    ModelRef,
    PredictOptions,
    WeightsUnavailableError,
    check_model_files,
    coco_names,
    fetch_weights,
    official_config,
    openvino_xmls,
    resolve_classes,
    stand_in,
)
from detect_cli.models import load as load_torch
from detect_cli.quantize import CalibrationError
from detect_cli.results import Note, busy
from detect_cli.runtime import Mode


def _ignore(_: str) -> None:
    pass


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
            _say_rebuilt(warn, exports_dir() / key, f"the cached int8 export of {ref.name}", "quantizing")
        entry = quantize_entry(ref, source, plan.calibration, calib, key, warn)
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
    """A Detector over the exported model, run by its runtime directly (runtime/: no torch, no
    ultralytics); OpenVINO is compiled at the precision asked for, through the compiled-model cache."""
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


def _export_metadata(artifact: Path, kind: str, session: runtime.Session | None) -> dict[str, Any]:
    """What ultralytics wrote about an export: metadata.yaml beside an OpenVINO IR, the custom
    metadata of an ONNX file (each value a Python literal, read from its open session)."""
    if kind == "onnx":
        assert isinstance(session, runtime.OnnxSession)
        meta: dict[str, Any] = {}
        for key, text in session.session.get_modelmeta().custom_metadata_map.items():
            try:
                meta[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):  # a plain string (the description, the date)
                meta[key] = text
        return meta
    import yaml

    found = yaml.safe_load((artifact.parent / "metadata.yaml").read_text(encoding="utf-8"))
    return found if isinstance(found, dict) else {}


def _export_family(meta: dict[str, Any], ref: ModelRef) -> Family | None:
    """RT-DETR or YOLO, from the head ultralytics names in the metadata, else from the file's name;
    None when neither says."""
    head = str(meta.get("head") or "")
    if head:
        return "rtdetr" if head.startswith("RTDETR") else "yolo"
    said = f"{meta.get('description', '')} {Path(ref.location).name}".lower()
    if "rtdetr" in said or "rt-detr" in said:
        return "rtdetr"
    return "yolo" if "yolo" in said else None


def _export_imgsz(meta: dict[str, Any], options: PredictOptions) -> int | str:
    """The square input the export takes (a dynamic one takes `--imgsz`), or why it is not one."""
    args = meta.get("args") or {}
    if isinstance(args, dict) and args.get("dynamic"):
        return options.imgsz
    if meta.get("batch", 1) != 1:
        return f"it was exported for batches of {meta.get('batch')}"
    size = meta.get("imgsz")
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        return "its metadata does not give its input size"
    if size[0] != size[1]:
        return f"its input is {size[0]}x{size[1]}, not square"
    return int(size[0])


def _load_given_export(
    ref: ModelRef, kind: str, options: PredictOptions, plan: Plan, warn: Warn
) -> Detector | str:
    """An ONNX or OpenVINO export named with -m, run by runtime/ as a cached export is (no torch; a
    folder in THROUGHPUT mode), at its own input size and at fp32 unless `--precision` says otherwise
    (there is no PyTorch model to check a faster one against). Its class names and family come from
    what ultralytics wrote beside it (metadata.yaml) or into it (ONNX metadata). Where runtime/ cannot
    run it, why: ultralytics runs it instead, and a note says so once it has loaded (a file neither can
    read is ultralytics' one-line error, with no note before it)."""
    if kind not in ("onnx", "openvino"):
        return f"detect runs ONNX and OpenVINO exports itself, not {kind}"
    path = Path(ref.location)
    check_model_files(ref.location)  # one line for what neither runtime could read (a FIFO hangs both)
    try:
        if kind == "openvino":
            xmls = openvino_xmls(path)
            if len(xmls) != 1:
                raise _Unfit(f"it holds {len(xmls)} .xml files, not one")
            artifact = xmls[0]
            if not (artifact.parent / "metadata.yaml").is_file():
                raise _Unfit("there is no metadata.yaml beside it to name its classes")
        else:
            artifact = next(iter(sorted(path.glob("*.onnx"))), path) if path.is_dir() else path
        session: runtime.Session | None = None
        if kind == "onnx":
            session = runtime.open_session(artifact, kind, "fp32", None, plan.mode)
        if isinstance(session, runtime.OnnxSession):
            taken = session.session.get_inputs()[0].type
            if taken != "tensor(float)":  # a half-precision export: its input is float16
                raise _Unfit(f"its input is {taken}, not float32")
        meta = _export_metadata(artifact, kind, session)
        if meta.get("task", "detect") != "detect":
            raise _Unfit(f"it is a '{meta.get('task')}' model")
        names = meta.get("names")
        if not isinstance(names, dict) or not names:
            raise _Unfit("its metadata does not name its classes")
        family = _export_family(meta, ref)
        if family is None:
            raise _Unfit("neither its metadata nor its name says whether it is RT-DETR or YOLO")
        imgsz = _export_imgsz(meta, options)
        if isinstance(imgsz, str):
            raise _Unfit(imgsz)
        if session is None:
            session = runtime.open_session(artifact, kind, plan.precision or "fp32", None, plan.mode)
    except _Unfit as e:
        reason = str(e)
    except Exception as e:  # a parser or a runtime refusing it: ultralytics is given its turn
        reason = f"{type(e).__name__}: {e}"
    else:
        ref = replace(ref, family=family)
        options = replace(options, imgsz=imgsz)
        end2end = family == "yolo" and runtime.is_end2end(session)
        detector = runtime.ExportedDetector(
            ref, session, {int(k): str(v) for k, v in names.items()}, options, kind, end2end
        )
        if plan.precision and detector.precision != plan.precision:
            warn(f"{kind} cannot run {plan.precision} on this CPU; running {detector.precision}")
        return detector
    return reason


class _Unfit(Exception):
    """Why runtime/ cannot run an export given with -m."""


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
    """What `ref` loads, by content (`weights_digest`: the file's sha256, an OpenVINO export's over its
    .xml and .bin, or a config's digest, which differs from any trained weights'); None for what cannot
    be read."""
    try:
        location = str(fetch_weights(ref)) if ref.official else ref.location
        # Not remembered: naming the weights in records must not write to the cache folder.
        return weights_digest(location, remember=False) if Path(location).exists() or ref.untrained else None
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
        given = _load_given_export(ref, made, options, plan, warn)
        if isinstance(given, Detector):
            return given
        detector = load_torch(ref, options)  # a file neither can read: ultralytics' one-line error
        detector.backend = made
        warn(Note(f"{ref.location} runs through ultralytics, one picture at a time: {given}"))
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


def _say_rebuilt(warn: Warn, path: Path, what: str, doing: str) -> None:
    """Why an export is made again: damage is a warning; one made by an earlier version is a note."""
    why = unusable(path)
    said = f"{what} is {why}; {doing} it again"
    warn(said if why == "incomplete or damaged" else Note(said))


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
            _say_rebuilt(warn, exports_dir() / key, f"the cached {backend} export of {ref.name}", "exporting")
        doing = (
            f"exporting {ref.name} to {backend} at imgsz {options.imgsz} (once; cached in {exports_dir()})"
        )
        with busy(warn, doing):  # half a minute or more: never in silence
            torch_detector = load_torch(ref, replace_device(options))
            entry = export_entry(ref, torch_detector, backend, options.imgsz, digest, key)

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
