"""The compiled-model cache beside an export (`compiled/`): OpenVINO's compiled blobs (its CACHE_DIR),
the OpenVINO network with its uint8 input, and the graph ONNX Runtime optimizes. The folder is locked
(flock) while a runtime reads or writes it; each file is written under a temporary name and renamed, and
a file cut short by a killed run is dropped and made again."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from detect_cli.runtime.preprocess import uint8_bgr_input


@contextlib.contextmanager
def compiled_cache(folder: Path | None) -> Iterator[Path | None]:
    """The compiled-model cache folder, locked (flock) while a runtime reads or writes it, so two runs
    never see each other's half-written file; None (no cache) when it cannot be made (read-only)."""
    import fcntl

    if folder is None:
        yield None
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / ".lock").open("a")
    except OSError:
        yield None
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


def clear(folder: Path) -> None:
    """Every file of the cache but its lock: what a failed compile leaves is made again."""
    for path in folder.iterdir():
        if path.is_file() and path.name != ".lock":
            path.unlink(missing_ok=True)


def uint8_ir(core: Any, xml: Path, folder: Path) -> str:
    """The export's IR with `uint8_bgr_input` applied, saved once beside the compiled blobs (under the
    caller's lock; each file written under a temporary name, then renamed): its path."""
    import openvino as ov

    target = folder / f"{xml.stem}.uint8.xml"
    if not (target.is_file() and target.with_suffix(".bin").is_file()):
        # a killed run's leftovers (the lock is ours now); the stem taken literally, `[` included
        for stale in folder.glob(f".{glob.escape(xml.stem)}.uint8.*"):
            stale.unlink(missing_ok=True)
        part = folder / f".{xml.stem}.uint8.{os.getpid()}.xml"
        ov.save_model(uint8_bgr_input(core.read_model(str(xml))), str(part), compress_to_fp16=False)
        os.replace(part.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(part, target)  # last: the .xml says both files are whole
    return str(target)


@contextlib.contextmanager
def one_blob_per_config(folder: Path, config: str) -> Iterator[None]:
    """OpenVINO names each compiled blob by a hash of the network and its settings. A new blob for a
    config (precision and mode) that already had one means the network changed (a newer version of
    this program saves its input differently): the old blob is deleted, so the folder keeps one blob
    per config, recorded in blobs.json."""
    import json

    before = set(folder.glob("*.blob"))
    yield
    made = set(folder.glob("*.blob")) - before
    if len(made) != 1:
        return
    record_path = folder / "blobs.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        assert isinstance(record, dict)
    except (OSError, ValueError, AssertionError):
        record = {}
    new = made.pop().name
    if (old := record.get(config)) and old != new:
        (folder / str(old)).unlink(missing_ok=True)
    record[config] = new
    part = folder / f".blobs.{os.getpid()}.json"
    with contextlib.suppress(OSError):  # without the record, only a later clean-up is missed
        part.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(part, record_path)


def save_optimized(model: Path, target: Path) -> None:
    """ONNX Runtime's graph optimizations that hold on any CPU (EXTENDED: no layouts for this CPU's
    vector width, so a cache shared between machines stays valid), saved whole to `target`; the
    layout pass left runs at each load. Saves ~0.2 s of each later start (RT-DETR-L)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    options.optimized_model_filepath = str(part)
    try:
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        os.replace(part, target)
    except Exception:  # no saved graph: each start optimizes it again, as without a cache
        part.unlink(missing_ok=True)
