"""`--device`: auto, cpu, cuda, cuda:N or mps, checked up front; torch is not imported for the CPU."""

from __future__ import annotations

import sys

from detect_cli.errors import BadOptionError
from detect_cli.sources import ascii_int


def cuda_driver_present() -> bool:
    """Whether NVIDIA's driver library loads. Without it torch sees no GPU either, so `--device auto`
    is the CPU; with it, torch is asked (it may still be a CPU build, or see no device). Linux only:
    elsewhere the driver has other names, and torch is always asked."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def select_device(device: str) -> str:
    """'auto' becomes cuda:0 when CUDA is there, else cpu; an unavailable device is refused up front."""
    dev = device.strip().lower()
    if dev == "cpu" or (dev == "auto" and not cuda_driver_present()):
        return "cpu"  # known without importing torch (about 2 s), which a cached export does not need
    import torch

    if dev == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if dev == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise BadOptionError("device 'mps' is not available on this machine")
        return "mps"
    if dev == "cuda" or ascii_int(dev) is not None or dev.startswith("cuda:"):
        index = 0 if dev == "cuda" else ascii_int(dev.removeprefix("cuda:"))
        if index is None:
            raise BadOptionError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")
        if not torch.cuda.is_available():
            raise BadOptionError(f"device '{device}' requested but CUDA is not available; use --device cpu")
        if index >= torch.cuda.device_count():
            raise BadOptionError(
                f"device '{device}' does not exist ({torch.cuda.device_count()} CUDA devices)"
            )
        return f"cuda:{index}"
    raise BadOptionError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")
