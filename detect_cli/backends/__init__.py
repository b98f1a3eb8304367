"""Inference backends: PyTorch, or the same model exported once to ONNX Runtime or OpenVINO for fast
CPU runs: the plan, decided once (`planning`); the export cache, its manifests, locks and cap (`cache`);
exporting to ONNX or OpenVINO, INT8 through quantize.py (`export`); the check of an export against
PyTorch (`parity`); loading a model as planned (`loading`).

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.backends.cache import (
    COMPILED,
    MANIFEST_VERSION,
    CacheEntry,
    Cleared,
    cache_key,
    cache_limit,
    cached_exports,
    clear_exports,
    evict_exports,
    exports_dir,
    read_entry,
    remove_entry,
    weights_digest,
)
from detect_cli.backends.export import network_size
from detect_cli.backends.loading import (
    exported_kind,
    load,
    load_detector,
    weights_identity,
    weights_or_stand_in,
)
from detect_cli.backends.parity import Parity, parity_between
from detect_cli.backends.planning import (
    BACKENDS,
    EXPORTED,
    PRECISIONS,
    Backend,
    Plan,
    Precision,
    availability,
    calibrated,
    check_precision,
    choose_backend,
    device_for,
    installed,
    plan,
)

__all__ = [
    "BACKENDS",
    "COMPILED",
    "EXPORTED",
    "MANIFEST_VERSION",
    "PRECISIONS",
    "Backend",
    "CacheEntry",
    "Cleared",
    "Parity",
    "Plan",
    "Precision",
    "availability",
    "cache_key",
    "cache_limit",
    "cached_exports",
    "calibrated",
    "check_precision",
    "choose_backend",
    "clear_exports",
    "device_for",
    "evict_exports",
    "exported_kind",
    "exports_dir",
    "installed",
    "load",
    "load_detector",
    "network_size",
    "parity_between",
    "plan",
    "read_entry",
    "remove_entry",
    "weights_digest",
    "weights_identity",
    "weights_or_stand_in",
]
