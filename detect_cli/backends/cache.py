"""The export cache: one folder per (weights content, imgsz, backend, precision) under the per-user
cache folder (`exports_dir`), each built under a temporary name and renamed into place, with a
manifest naming the size and hash of every file, so a half-written or damaged export is never used:
it is rebuilt. One process at a time makes an export (`export_lock`); the least recently used go
first when the cache is over its cap (`evict_exports`); `detect models --clear-cache` deletes only
what the cache itself names (`clear_exports`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detect_cli.backends.parity import Parity
from detect_cli.backends.planning import Backend
from detect_cli.errors import BadOptionError
from detect_cli.models import cache_dir, import_ultralytics, openvino_xmls

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: the network's size (params, GFLOPs) counted at export time


def exports_dir() -> Path:
    return cache_dir() / "exports"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


DIGESTS = "digests.json"  # in the cache folder: weights hashes by (path, size, mtime)


def weights_digest(location: str, remember: bool = True) -> str:
    """Content hash of what `--model` names: the weights file, an exported model's files (an OpenVINO
    export's .xml and .bin, `exported_files`), or a model config (+ the fixed seed).

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
    files = exported_files(path) if path.is_dir() or path.suffix == ".xml" else [path]
    if not files:
        raise ValueError(f"{path} holds no exported model (an OpenVINO .xml and .bin, or an .onnx)")
    stats = [f.stat() for f in files]
    key = "|".join(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}" for f, st in zip(files, stats, strict=True))
    known = _read_json(cache_dir() / DIGESTS)
    if isinstance(known.get(key), str):
        return known[key]
    digest = _sha256(path) if files == [path] else _files_sha256(files)
    if not remember:
        return digest
    known[key] = digest
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        cache_dir().mkdir(parents=True, exist_ok=True)
        _write_json(cache_dir() / DIGESTS, dict(list(known.items())[-256:]))
    return digest


def exported_files(path: Path) -> list[Path]:
    """The files an exported model given as `path` is made of, in a stable order: each OpenVINO .xml (the
    one named, or a folder's, by name) then its .bin, then a folder's .onnx files. Other files of an export
    folder (metadata.yaml: its export date and version) are not the model."""
    files = [f for xml in openvino_xmls(path) for f in (xml, xml.with_suffix(".bin"))]
    return files + sorted(path.glob("*.onnx")) if path.is_dir() else files


def _files_sha256(files: list[Path]) -> str:
    """One digest over the files' contents, in their order, each told by its suffix alone: renaming an
    export (its files take the .pt's name) keeps its digest, as renaming a .pt keeps its sha256."""
    h = hashlib.sha256(b"exported model\n")
    for f in files:
        h.update(f"{f.suffix} {_sha256(f)}\n".encode())
    return h.hexdigest()


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


def file_table(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST and p.relative_to(root).parts[0] != COMPILED
    }


def file_hashes(root: Path, files: Mapping[str, int]) -> dict[str, str]:
    return {rel: _sha256(root / rel) for rel in files}


def read_entry(path: Path, verify: bool = True) -> CacheEntry | None:
    """The entry at `path` when complete and intact (every file there, same size and hash), else None."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("version") != MANIFEST_VERSION or not (path / manifest["artifact"]).exists():
            return None
        files: dict[str, int] = manifest["files"]
        if file_table(path) != files:
            return None
        if verify and file_hashes(path, files) != manifest["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return CacheEntry(path, manifest)


def unusable(path: Path) -> str:
    """Why the entry at `path` cannot be used (`read_entry` gave None): made by an earlier version of
    this tool (its manifest's version differs: rebuilt once, nothing wrong), or incomplete or damaged."""
    try:
        version = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return "incomplete or damaged"
    return "incomplete or damaged" if version == MANIFEST_VERSION else "from an earlier version of detect"


def write_manifest(entry: CacheEntry) -> None:
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
_KEY_OF = re.compile(rf"\.?({_KEY_TEXT})(?:\.\d+-[0-9a-f]{{8}}\.part|\.lock)?")


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
    busy: list[Path] = field(default_factory=list)  # an export of that key is being made right now


def clear_exports() -> Cleared:
    """Delete every cached export, leftovers of interrupted ones and their lock files: what the cache
    names (see `remove_entry`), never anything else a user keeps in the folder, which is listed in
    `left`. A key whose export another process is making now (it holds the key's lock) is left whole
    and listed in `busy`: its temporary folder is that export's work in progress."""
    root = exports_dir()
    cleared = Cleared()
    if not root.is_dir():
        return cleared
    for p in sorted(root.iterdir()):
        found = _KEY_OF.fullmatch(p.name)
        if p.is_symlink() or found is None:
            cleared.left.append(p)
            continue
        with _unless_busy(found.group(1)) as free:
            if not free:
                cleared.busy.append(p)
            elif _LOCK.fullmatch(p.name):
                with contextlib.suppress(OSError):
                    p.unlink()  # export_lock sees a lock file replaced and locks the new one
            else:
                size, left = remove_entry(p)
                cleared.exports += size > 0 or not p.exists()
                cleared.size += size
                cleared.left += left
    return cleared


def _lock_file(path: Path, create: bool) -> int | None:
    """A descriptor on the lock file at `path`, or None where there is none to lock: missing (when not
    `create`), a link, a FIFO or anything but a regular file (opened without blocking, never followed),
    or a cache that cannot be written."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    flags |= (os.O_WRONLY | os.O_CREAT | os.O_APPEND) if create else os.O_RDONLY
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def _unless_busy(key: str) -> Iterator[bool]:
    """The key's export lock taken without waiting: True while held, False when another process holds
    it (an export of that key in progress). A key without a lock file has no export in progress."""
    import fcntl

    fd = _lock_file(exports_dir() / f".{key}.lock", create=False)
    if fd is None:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def commit_entry(entry: CacheEntry, final: Path) -> CacheEntry:
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


def space_note(folder: Path) -> str:
    """A hint when the export cache's disk is nearly full (an export needs a few times the weights)."""
    try:
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return ""
    if free >= 2**30:
        return ""
    return f" (only {free / 2**20:.0f} MB free in {folder}; DETECT_CACHE_DIR moves the cache)"


@contextlib.contextmanager
def export_lock(key: str, waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """An exclusive lock (flock) on one export's key, calling `waiting` first when another process
    holds it; where the cache cannot be written, no lock."""
    import fcntl

    path = exports_dir() / f".{key}.lock"
    said = False
    while True:
        try:
            exports_dir().mkdir(parents=True, exist_ok=True)
        except OSError:
            yield
            return
        fd = _lock_file(path, create=True)
        if fd is None:  # not writable here, or not a file of ours: no lock, as for a read-only cache
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                waiting()
                said = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        # --clear-cache may have removed the file while this waited: a lock on a file no longer at
        # `path` guards nothing, since the next process locks a new one. Lock what is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)
