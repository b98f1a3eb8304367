"""The machine a comparison ran on (`environment`: CPU, threads, GPU, versions, the command) and each
model's peak memory (`measure_memory`), measured in a child process per model so that one model's
memory does not hide another's.

How memory is measured, per model, in a fresh child process (multiprocessing, spawn):
- the child imports torch and ultralytics, resets its peak resident memory to the current one
  (Linux: /proc/self/clear_refs), and reads its resident memory: the baseline;
- it loads the model as the run did (same backend, device and precision) and runs it on the run's first
  few inputs (`MEMORY_IMAGES`);
- on CPU the model's figure is the peak resident memory after that (VmHWM; `ru_maxrss` where the peak
  cannot be reset) minus the baseline (weights, activations, the backend's buffers); on CUDA it is
  `torch.cuda.max_memory_allocated()` (its counters reset before the model loads), with the RSS figure
  beside it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.backends import Plan, load_detector
from detect_cli.compare.results import Environment, Memory
from detect_cli.models import Detector, ModelRef, PredictOptions

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    import numpy as np

MEMORY_IMAGES = 3  # inputs each model runs on in its memory child: the peak is reached on the first
MEMORY_TIMEOUT_S = 600.0  # per model: loading, and for an export its first compile, included

# --- the environment --------------------------------------------------------------------------------

PACKAGES = (
    "detect-cli",
    "torch",
    "torchvision",
    "ultralytics",
    "openvino",
    "onnxruntime",
    "numpy",
    "opencv-python",
)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of detect and the packages that decide the numbers (absent ones left out)."""
    out = {}
    for name in PACKAGES:
        try:
            out["detect" if name == "detect-cli" else name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _gpu(device: str) -> tuple[str | None, str | None, str | None]:
    """(GPU name, driver version, CUDA version) when the run used CUDA, else Nones."""
    if not device.startswith("cuda"):
        return None, None, None
    import torch

    index = int(device.partition(":")[2] or 0)
    name = torch.cuda.get_device_name(index)
    driver = None
    with contextlib.suppress(Exception):  # pynvml is optional; nvidia-smi's file is the fallback
        driver = Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    return name, driver, torch.version.cuda


def environment(command: Sequence[str], device: str) -> Environment:
    """What a colleague needs to set this report beside theirs. `command` is the command line as run.
    torch's thread count only when torch ran (a run on exports never imports it)."""
    torch = sys.modules.get("torch")
    gpu, driver, cuda = _gpu(device)
    argv = list(command)
    if argv:
        # The program, not the path of the venv it lives in; `python -m detect_cli` as typed.
        argv[0] = "python -m detect_cli" if Path(argv[0]).name == "__main__.py" else Path(argv[0]).name
    command_line = shlex.join(argv[1:])
    if argv:
        command_line = f"{argv[0]} {command_line}".strip()
    return Environment(
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads() if torch is not None else None,
        gpu=gpu,
        gpu_driver=driver,
        cuda=cuda,
        os=platform.platform(),
        python=platform.python_version(),
        versions=package_versions(),
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command_line,
    )


# --- memory -----------------------------------------------------------------------------------------


def _maxrss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _status_mb(key: str) -> float | None:
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status (Linux), in MB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ≥ 4.0: `5` to /proc/self/clear_refs), so
    the imports' transient peak is not taken for the model's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _child(ref: ModelRef, options: PredictOptions, plan: Plan, images: list[np.ndarray]) -> dict[str, float]:
    """Runs in the child: baseline after imports, then the model loaded and run on `images`."""
    import gc
    import importlib

    # Imported before the baseline (not the model's memory), for every backend alike, so figures of
    # PyTorch and of exports count the same things. (A baseline of the export's runtime alone gave
    # RT-DETR-L 894 MB instead of 505 MB here; why was not settled, so the figure keeps one meaning.)
    for module in ("torch", "ultralytics.engine.predictor", "ultralytics.engine.results", "ultralytics"):
        importlib.import_module(module)
    cuda = options.device.startswith("cuda")
    gc.collect()
    reset = _reset_peak()
    baseline = (_status_mb("VmRSS") if reset else None) or _maxrss_mb()
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    detector = load_detector(ref, options, plan)
    for image in images:
        detector.predict([image])
    peak = (_status_mb("VmHWM") if reset else None) or _maxrss_mb()
    out = {"baseline_mb": baseline, "rss_mb": max(peak - baseline, 0.0)}
    if cuda:
        import torch

        torch.cuda.synchronize()
        out["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure_memory(
    detector: Detector, plan: Plan, images: Sequence[np.ndarray], warn: Callable[[str], None] | None = None
) -> Memory | None:
    """`detector`'s peak memory on `images`, measured in a fresh child process (module docstring).
    None, with a warning, when the child cannot load or run it.

    The child ignores SIGINT and SIGTERM: a Ctrl-C at a terminal reaches the whole process group, and
    the run, not the child, decides what a stop means (a first one lets this measurement finish, a
    second one raises `Interrupted` here, and the child is killed on the way out)."""
    import multiprocessing

    if not images:
        return None
    # The child runs the run's decided backend and precision, and the options as resolved (classes).
    child_plan = replace(plan, backend=_plan_backend(detector, plan), precision=detector.precision)
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(send, detector.ref, detector.options, child_plan, list(images)),
        name="detect-memory",
    )
    try:
        with _signals_blocked():  # inherited across exec: no signal reaches the child before it ignores them
            child.start()
        send.close()
        result = _child_result(receive, child)
    except Exception as e:  # the figure is missing, the comparison is not: say why
        if warn:
            why = str(e) if isinstance(e, MemoryChildError) else f"{type(e).__name__}: {e}"
            warn(f"memory of {detector.name} not measured: {why}")
        return None
    finally:
        receive.close()
        if child.is_alive():  # a second Ctrl-C, a timeout: the child goes with the measurement
            child.kill()
        if child.pid is not None:
            child.join()
    if "cuda_mb" in result:
        return Memory(result["cuda_mb"], "cuda", len(images), result["baseline_mb"], result["rss_mb"])
    return Memory(result["rss_mb"], "rss", len(images), result["baseline_mb"], result["rss_mb"])


class MemoryChildError(RuntimeError):
    """The memory child could not measure: its error, or how it ended."""


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread while a child starts (a signal that comes meanwhile
    is delivered here once unblocked, not lost); the child starts with them blocked."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _child_main(
    send: Connection, ref: ModelRef, options: PredictOptions, plan: Plan, images: list[np.ndarray]
) -> None:
    """The child's entry: stop signals ignored, then unblocked (they were blocked before it started),
    then `_child`; its figures, or its error as text, sent back."""
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        send.send(("ok", _child(ref, options, plan, images)))
    except Exception as e:
        send.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        send.close()


def _child_result(receive: Connection, child: BaseProcess) -> dict[str, float]:
    """What the child sent, waited for up to `MEMORY_TIMEOUT_S` (a first stop signal does not cut the
    wait; a second one raises here)."""
    if not receive.poll(MEMORY_TIMEOUT_S):
        raise TimeoutError(f"no result in {MEMORY_TIMEOUT_S:.0f} s")
    try:
        status, result = receive.recv()
    except EOFError:
        child.join()
        raise MemoryChildError(f"the measuring process ended (exit code {child.exitcode})") from None
    if status != "ok":
        raise MemoryChildError(result)
    return result


def _plan_backend(detector: Detector, plan: Plan) -> Any:
    """The backend the detector ended on: an `auto` plan may have fallen back to torch."""
    return detector.backend if detector.backend in ("torch", "onnx", "openvino") else plan.backend


MEMORY_METHOD = {
    "rss": "peak resident memory (VmHWM) of a child process that loads only this model and runs it on "
    "the first {n} inputs, minus that child's resident memory right after importing torch and ultralytics "
    "(its peak reset there)",
    "cuda": "torch.cuda.max_memory_allocated() in a child process that loads only this model and runs it on "
    "the first {n} inputs (counters reset before loading)",
}
