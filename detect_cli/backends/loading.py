"""Inference backends: PyTorch, or the same model exported once to ONNX Runtime or OpenVINO for fast CPU runs.

Exports go through ultralytics' own exporter into a per-user cache, one folder per (weights content,
imgsz, backend, precision). A folder is built under a temporary name and renamed into place, and holds a
manifest with the size and hash of every file, so a half-written or damaged export is never used: it is
rebuilt. Right after an export, the exported model and the PyTorch model run on one picture and their
detections are compared (`Parity`); an `auto` choice that fails that check falls back to PyTorch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.backends.parity import Parity, measure_parity
from detect_cli.backends.planning import Backend, Plan
from detect_cli.errors import BadOptionError, ExportError, ModelError
from detect_cli.models import (
    Detector,
    ModelRef,
    PredictOptions,
    WeightsUnavailableError,
    cache_dir,
    coco_names,
    fetch_weights,
    has_one2one_head,
    import_ultralytics,
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


MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: the network's size (params, GFLOPs) counted at export time

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


# --- the cache -------------------------------------------------------------------------------------


def exports_dir() -> Path:
    return cache_dir() / "exports"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


DIGESTS = "digests.json"  # in the cache folder: weights hashes by (path, size, mtime)


def weights_digest(location: str, remember: bool = True) -> str:
    """Content hash of what `--model` names: the weights file, or a model config (+ the fixed seed).

    A weights file's hash is remembered by (absolute path, size, mtime): a run does not re-read 60 MB
    of unchanged weights to find its export; a file changed in any of those is hashed again. With
    `remember` False a new hash is not written to the cache folder (a PyTorch run writes nothing there)."""
    path = Path(location)
    if path.suffix in (".yaml", ".yml"):
        if path.is_file():
            return hashlib.sha256(b"seed=0\n" + path.read_bytes()).hexdigest()
        # A config ultralytics ships: `yolo11n.yaml` is yolo11.yaml at scale n, as ultralytics reads it.
        import_ultralytics()
        from ultralytics.nn.tasks import yaml_model_load

        config = {k: v for k, v in yaml_model_load(location).items() if k != "yaml_file"}
        text = json.dumps(config, sort_keys=True, default=str)
        return hashlib.sha256(b"seed=0\n" + text.encode()).hexdigest()
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    known = _read_json(cache_dir() / DIGESTS)
    if isinstance(known.get(key), str):
        return known[key]
    digest = _sha256(path)
    if not remember:
        return digest
    known[key] = digest
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        cache_dir().mkdir(parents=True, exist_ok=True)
        _write_json(cache_dir() / DIGESTS, dict(list(known.items())[-256:]))
    return digest


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def cache_key(digest: str, imgsz: int, backend: Backend, precision: str, calibration: str = "") -> str:
    """An export's folder name; an INT8 export's names its calibration set too (its content digest)."""
    key = f"{digest[:16]}-{imgsz}-{backend}-{precision}"
    return f"{key}-{calibration[:16]}" if calibration else key


@dataclass
class CacheEntry:
    """One export in the cache, as its manifest describes it."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def artifact(self) -> Path:
        return self.path / self.manifest["artifact"]

    @property
    def size_bytes(self) -> int:
        """The export's files and the compiled models the runtimes cached beside them."""
        compiled = self.path / COMPILED
        cached = sum(p.stat().st_size for p in compiled.rglob("*") if p.is_file()) if compiled.is_dir() else 0
        return cached + sum(int(s) for s in self.manifest.get("files", {}).values())

    @property
    def last_used(self) -> float:
        """When a run last loaded it (the manifest's mtime, touched on every use), as a timestamp."""
        try:
            return (self.path / MANIFEST).stat().st_mtime
        except OSError:
            return 0.0

    def touch(self) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path / MANIFEST)

    def parity(self, precision: str) -> Parity | None:
        found = self.manifest.get("parity", {}).get(precision)
        return Parity.from_dict(found) if found else None


COMPILED = "compiled"  # the runtimes' compiled-model cache in an export's folder: not part of the export


def _file_table(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST and p.relative_to(root).parts[0] != COMPILED
    }


def _hashes(root: Path, files: Mapping[str, int]) -> dict[str, str]:
    return {rel: _sha256(root / rel) for rel in files}


def read_entry(path: Path, verify: bool = True) -> CacheEntry | None:
    """The entry at `path` when complete and intact (every file there, same size and hash), else None."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("version") != MANIFEST_VERSION or not (path / manifest["artifact"]).exists():
            return None
        files: dict[str, int] = manifest["files"]
        if _file_table(path) != files:
            return None
        if verify and _hashes(path, files) != manifest["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return CacheEntry(path, manifest)


def _write_manifest(entry: CacheEntry) -> None:
    tmp = entry.path / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(entry.manifest, indent=2), encoding="utf-8")
    os.replace(tmp, entry.path / MANIFEST)


def cached_exports() -> list[CacheEntry]:
    """Every complete entry in the cache (by manifest and sizes; hashes are checked when one is used)."""
    root = exports_dir()
    if not root.is_dir():
        return []
    entries = (read_entry(p, verify=False) for p in sorted(root.iterdir()) if _KEY.fullmatch(p.name))
    return [e for e in entries if e is not None and not e.path.is_symlink()]


DEFAULT_CACHE_MAX_BYTES = 4 * 1024**3


def cache_limit() -> int:
    """The export cache's size cap in bytes: $DETECT_EXPORT_CACHE_MAX (bytes, or with a K/M/G suffix,
    powers of 1024), default 4 GiB."""
    text = os.environ.get("DETECT_EXPORT_CACHE_MAX", "").strip()
    if not text:
        return DEFAULT_CACHE_MAX_BYTES
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1].upper(), 1)
    number = text[:-1] if scale > 1 else text
    # ASCII digits only: float() also reads '٣' as 3 and 'inf', 'nan', '1e400' as numbers
    size = int(float(number) * scale) if re.fullmatch(r"[0-9]+(\.[0-9]*)?", number) else -1
    if size < 0:
        raise BadOptionError(f"DETECT_EXPORT_CACHE_MAX={text} is not a size (e.g. 4G, 500M, 0)")
    return size


def evict_exports(keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Delete the least recently used exports until the cache fits its cap; `keep` (the export in use)
    is never deleted. Returns the folders removed."""
    limit = cache_limit() if limit is None else limit
    entries = sorted(cached_exports(), key=lambda e: e.last_used)
    total = sum(e.size_bytes for e in entries)
    removed = []
    for entry in entries:
        if total <= limit:
            break
        if keep is not None and entry.path == keep:
            continue
        size = entry.size_bytes
        remove_entry(entry.path)
        total -= size
        removed.append(entry.path)
    return removed


# What the cache itself names under exports/: an export's folder (its key), the temporary folder an
# export is made in, and an export's lock file. Anything else there is not the cache's to delete.
_KEY_TEXT = r"[0-9a-f]{16}-\d+-(?:onnx|openvino)-(?:fp32|fp16|bf16|int8-[0-9a-f]{16})"
_KEY = re.compile(_KEY_TEXT)
_PARTIAL = re.compile(rf"\.{_KEY_TEXT}\.\d+-[0-9a-f]{{8}}\.part")
_LOCK = re.compile(rf"\.{_KEY_TEXT}\.lock")


def _named_by_manifest(folder: Path) -> list[Path] | None:
    """The paths an export's manifest names in `folder` (its files, the manifest itself, and the
    runtimes' compiled/ cache), or None when `folder` holds no readable manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = [folder / rel for rel in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    real = os.path.realpath(folder) + os.sep
    # A name that leads out of the folder (through "..", or a linked sub-folder) is not the export's.
    inside = [p for p in files if (os.path.realpath(p.parent) + os.sep).startswith(real)]
    return [*inside, folder / COMPILED, folder / MANIFEST]


def _tree_size(path: Path) -> int:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, names in os.walk(path) for f in names)


def remove_entry(folder: Path) -> tuple[int, list[Path]]:
    """Delete an export: what its manifest names, then the folders that leaves empty. A temporary
    folder of an interrupted export (named by the cache, with a pid and a random part) goes whole,
    manifest or not. Nothing is followed through a link. Returns (bytes removed, paths left alone)."""
    if folder.is_symlink():
        return 0, [folder]
    named = _named_by_manifest(folder)
    if named is None:
        if not _PARTIAL.fullmatch(folder.name):
            return 0, [folder]
        named = [folder]
    removed = 0
    for path in named:
        try:
            size = _tree_size(path)
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # what cannot be removed shows among the paths left below
        removed += size
    for dirpath, _dirs, _files in os.walk(folder, topdown=False):  # children before their parents
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)  # only empty folders go
    left = [Path(d, f) for d, _, names in os.walk(folder) for f in names] if folder.exists() else []
    return removed, left


@dataclass
class Cleared:
    """What `clear_exports` did: the exports removed, their bytes, and what it left alone."""

    exports: int = 0
    size: int = 0
    left: list[Path] = field(default_factory=list)


def clear_exports() -> Cleared:
    """Delete every cached export, leftovers of interrupted ones and their lock files: what the cache
    names (see `remove_entry`), never anything else a user keeps in the folder, which is listed in
    `left`."""
    root = exports_dir()
    cleared = Cleared()
    if not root.is_dir():
        return cleared
    for p in sorted(root.iterdir()):
        if p.is_symlink() or not (
            _KEY.fullmatch(p.name) or _PARTIAL.fullmatch(p.name) or _LOCK.fullmatch(p.name)
        ):
            cleared.left.append(p)
        elif _LOCK.fullmatch(p.name):
            with contextlib.suppress(OSError):
                p.unlink()
        else:
            size, left = remove_entry(p)
            cleared.exports += size > 0 or not p.exists()
            cleared.size += size
            cleared.left += left
    return cleared


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
        files = _file_table(tmp)
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
                "sha256": _hashes(tmp, files),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "ultralytics": ultralytics.__version__,
                "parity": {},
                "names": {str(k): v for k, v in torch_detector.names.items()},
                "size": size,
            },
        )
        _write_manifest(entry)
        return _commit(entry, root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _commit(entry: CacheEntry, final: Path) -> CacheEntry:
    """Rename a complete export (manifest written) from its temporary folder into place."""
    tmp = entry.path
    if final.exists():  # a damaged entry (checked by the caller) or one a parallel run just finished
        shutil.rmtree(final, ignore_errors=True)  # under the cache's own key name: the cache's
    try:
        os.replace(tmp, final)
    except OSError:
        if (other := read_entry(final)) is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return other
        raise
    entry.path = final
    return entry


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
        files = _file_table(tmp)
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
                "sha256": _hashes(tmp, files),
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
        _write_manifest(entry)
        return _commit(entry, root / key)
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
        _write_manifest(entry)
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
        with _export_lock(
            key, lambda: warn(Note(f"waiting for another run that is exporting {ref.name} to {backend}"))
        ):
            detector, parity, torch_detector = _ready_export(ref, options, plan, digest, key, warn)
    except (ExportError, OSError) as e:  # a full disk, an exporter bug, a runtime refusing the file
        reason = str(e) if isinstance(e, ExportError) else f"cannot write the export cache: {e}"
        reason += _space_note(exports_dir())
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


def _space_note(folder: Path) -> str:
    """A hint when the export cache's disk is nearly full (an export needs a few times the weights)."""
    try:
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return ""
    if free >= 2**30:
        return ""
    return f" (only {free / 2**20:.0f} MB free in {folder}; DETECT_CACHE_DIR moves the cache)"


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
        _write_manifest(entry)
    return detector, parity, torch_detector


@contextlib.contextmanager
def _export_lock(key: str, waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """An exclusive lock (flock) on one export's key, calling `waiting` first when another process
    holds it; where the cache cannot be written, no lock."""
    import fcntl

    try:
        exports_dir().mkdir(parents=True, exist_ok=True)
        handle = (exports_dir() / f".{key}.lock").open("a")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


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
