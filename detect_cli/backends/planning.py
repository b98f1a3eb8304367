"""The plan: which backend runs the model, on which device, at which precision, for one picture at a
time or many (`Plan`), decided once from the options (`plan`) before anything loads, and carried as
is; later layers read it and never decide again."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from detect_cli.errors import BadOptionError, MissingBackendError
from detect_cli.models import select_device
from detect_cli.quantize import Calibration, from_inputs
from detect_cli.runtime import Mode

if TYPE_CHECKING:
    from detect_cli.sources import ImageInput, VideoInput

Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "openvino")
EXPORTED: tuple[Backend, ...] = ("onnx", "openvino")
Precision = Literal["fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16", "int8")

# What each exported backend needs installed (module names); `pip install 'detect-cli[cpu]'` brings them all.
REQUIRES: dict[Backend, tuple[str, ...]] = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",)}


def installed(backend: Backend) -> bool:
    """True when the packages a backend needs can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in REQUIRES.get(backend, ()))


def availability() -> dict[Backend, bool]:
    return {b: b == "torch" or installed(b) for b in BACKENDS}


def choose_backend(requested: str, device: str, available: Mapping[Backend, bool]) -> Backend:
    """The backend to run: `auto` is torch on CUDA, else OpenVINO, else ONNX Runtime, else torch.

    An exported backend asked for by name must be installed (else MissingBackendError, exit 2) and runs
    on the CPU only.
    """
    if requested == "auto":
        if device.startswith("cuda") or device == "mps":
            return "torch"
        return next((b for b in ("openvino", "onnx") if available.get(b)), "torch")
    if requested not in BACKENDS:
        raise BadOptionError(f"unknown backend '{requested}': use torch, onnx, openvino or auto")
    backend: Backend = requested  # type: ignore[assignment]
    if backend != "torch" and not available.get(backend):
        missing = ", ".join(REQUIRES[backend])
        raise MissingBackendError(
            f"--backend {backend} needs {missing}, which is not installed: "
            f"pip install 'detect-cli[cpu]' (or pip install {' '.join(REQUIRES[backend])})"
        )
    if backend != "torch" and device != "cpu":
        raise BadOptionError(f"--backend {backend} runs on the CPU: use --device cpu, or --backend torch")
    return backend


def device_for(requested_backend: str, device: str) -> str:
    """`--device auto` with an exported backend named explicitly means the CPU, where those backends run."""
    return "cpu" if requested_backend in EXPORTED and device.strip().lower() == "auto" else device


@dataclass(frozen=True, slots=True)
class Plan:
    """What runs the model, decided once (`plan`) and carried as is: the backend (never `auto`), the
    device, and the precision (None: the backend's faster one when its detections match PyTorch, else
    fp32, settled when the export loads). `explicit`: the user named the backend, so it is kept even
    when it drifts from PyTorch; an `auto` choice falls back to PyTorch instead. `offline_fallback`:
    an official model whose weights cannot be fetched runs as its untrained config (`--offline-fallback`)
    instead of stopping the run. `mode`: what an OpenVINO export is compiled for, one picture at a time
    (`latency`) or many at once (`throughput`: folders)."""

    backend: Backend = "torch"
    device: str = "cpu"
    precision: Precision | None = None
    explicit: bool = False
    offline_fallback: bool = False
    mode: Mode = "latency"
    requested: str = "auto"  # the backend as asked: what a Ray worker decides from, on its own machine
    # INT8 only: the pictures it is calibrated on (`--calibration DIR`, else the run's own pictures or
    # video frames, set by the job before loading: quantize.from_inputs).
    calibration: Calibration | None = None


def plan(
    requested: str,
    device: str,
    precision: str | None = None,
    half: bool = False,
    resolve_device: bool = True,
    available: Mapping[Backend, bool] | None = None,
    offline_fallback: bool = False,
    calibration: Calibration | None = None,
) -> Plan:
    """Decide the backend, device and precision from the options (raises BadOptionError or
    MissingBackendError, exit code 2, before anything loads).

    `resolve_device=False` is for workers elsewhere (Ray) that may have GPUs or runtimes this machine
    lacks: the model is loaded here with PyTorch (for its names), and each worker plans again from
    `requested` on its own machine (executors.BatchWorker).
    """
    if calibration is not None and precision != "int8":
        raise BadOptionError("--calibration is for --precision int8 (the pictures INT8 is calibrated on)")
    if not resolve_device:
        if precision == "int8":
            raise BadOptionError("--precision int8 runs on this machine only (not with --executor ray)")
        exact: Any = "fp16" if half else precision
        dev = device.strip().lower()
        return Plan("torch", dev, exact, requested != "auto", offline_fallback, requested=requested)
    dev = select_device(device_for(requested, device))
    if half and not dev.startswith("cuda"):
        raise BadOptionError("--half needs a CUDA device")
    backend = choose_backend(requested, dev, availability() if available is None else available)
    exact = check_precision(backend, precision, dev, half)
    return Plan(
        backend,
        dev,
        exact,
        requested != "auto",
        offline_fallback,
        requested=requested,
        calibration=calibration,
    )


def calibrated(plan: Plan, items: Sequence[ImageInput | VideoInput]) -> Plan:
    """An INT8 plan without `--calibration` calibrates on the run's own inputs (`items`): its first
    pictures, or frames spread across its local video files (quantize.from_inputs); any other plan is
    returned as is."""
    if plan.precision != "int8" or plan.calibration is not None:
        return plan
    return replace(plan, calibration=from_inputs(items))


def check_precision(backend: Backend, precision: str | None, device: str, half: bool) -> Precision | None:
    """Validate `--precision` for a backend; None means the backend's default (decided when loading)."""
    if half:
        if precision not in (None, "fp16"):
            raise BadOptionError(f"--half and --precision {precision} disagree; use one of them")
        precision = "fp16"
    if precision is None:
        return None
    if precision not in PRECISIONS:
        raise BadOptionError(f"unknown precision '{precision}': use fp32, bf16, fp16 or int8")
    if precision == "fp32":
        return "fp32"
    if precision == "int8":
        if backend != "openvino":
            raise BadOptionError(
                "--precision int8 is for OpenVINO on the CPU (--backend openvino, or auto where OpenVINO "
                f"is installed; this run would use {backend})"
            )
        if importlib.util.find_spec("nncf") is None:
            raise MissingBackendError(
                "--precision int8 needs nncf, which is not installed: pip install 'detect-cli[cpu]' "
                "(or pip install nncf)"
            )
        return "int8"
    if precision == "fp16":
        if backend == "torch" and device.startswith("cuda"):
            return "fp16"
        raise BadOptionError("--precision fp16 is for CUDA (--backend torch --device cuda)")
    if backend == "openvino":  # bf16
        return "bf16"
    raise BadOptionError("--precision bf16 is for --backend openvino on CPUs with bf16 support")
