"""Exporting: a PyTorch model through ultralytics' own exporter to fp32 ONNX or OpenVINO (`export_model`),
its network's size counted first, into a temporary folder of the cache that is renamed into place
with its manifest (`export_entry`); an fp32 OpenVINO export quantized to INT8 with NNCF on the
calibration pictures (`quantize_entry`, through quantize.py). Nothing is left behind when it fails or
is interrupted."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from detect_cli.backends.cache import (
    MANIFEST_VERSION,
    CacheEntry,
    commit_entry,
    exports_dir,
    file_hashes,
    file_table,
    write_manifest,
)
from detect_cli.backends.planning import Backend
from detect_cli.errors import ExportError
from detect_cli.models import Detector, ModelRef, has_one2one_head, quiet_stdout
from detect_cli.quantize import (
    Calibration,
    CalibrationError,
    Pictures,
    import_nncf,
    quantize_openvino,
)
from detect_cli.signals import deferred

Warn = Callable[[str], None]  # the caller's callback for what the user should be told


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


def export_entry(
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
        with deferred():  # a second Ctrl-C must not leave the folder half-removed
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def quantize_entry(
    ref: ModelRef, source: CacheEntry, calibration: Calibration, calib_digest: str, key: str, warn: Warn
) -> CacheEntry:
    """Quantize the fp32 OpenVINO export `source` to INT8 on the calibration pictures (quantize.py)
    into a temporary folder, write its manifest, and rename it into place; nothing is left behind
    when it fails or is interrupted (Ctrl-C)."""
    imgsz = int(source.manifest["imgsz"])
    family = source.manifest.get("family", ref.family)
    pictures = Pictures(calibration.files, imgsz, family == "rtdetr", calibration.videos).checked()
    if pictures.skipped and not len(pictures):
        name, why = pictures.skipped[0]
        raise CalibrationError(
            f"none of the calibration pictures ({calibration.origin}) can be read (first: {name}: {why})"
        )
    for name, why in (*calibration.left_out, *pictures.skipped):  # each named: none is dropped unsaid
        warn(f"calibration picture {name} is left out: {why}")
    nncf = import_nncf()  # before the folder: importing it takes seconds (torch among it), no part of it

    root = exports_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
    tmp.mkdir()
    try:
        warn(
            f"quantizing {ref.name} to int8 on {pictures.said()} ({calibration.origin}): once, "
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
        with deferred():  # a second Ctrl-C must not leave the folder half-removed
            shutil.rmtree(tmp, ignore_errors=True)
        raise
