"""What bounds a folder run on this CPU, measured: OpenVINO's own `benchmark_app` on an IR (its images/s
and the CPU it spends on each picture), the CPU a folder run spends on each picture besides inference
(reading and decoding it, drawing its boxes, encoding the annotated copy), and the time of each kind of
layer in a network (OpenVINO's per-layer counters).

From these, the most any pipeline could reach on this machine (`ceiling`): on cores that inference
already keeps busy, the picture work is taken from inference whichever thread does it, so a run that
must spend `work` CPU-ms on a picture besides the network's `network` CPU-ms reaches at most
network / (network + work) of `benchmark_app`.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AppRun:
    """One `benchmark_app` run: images/s, and the CPU-ms it spent per picture in its timed part."""

    fps: float
    cpu_ms: float


def _benchmark_app(xml: Path, precision: str, seconds: int) -> tuple[float, int, float]:
    """(FPS, pictures run, CPU seconds of the whole process) of one `benchmark_app -hint throughput`."""
    tool = Path(sys.executable).with_name("benchmark_app")
    argv = [str(tool), "-m", str(xml), "-d", "CPU", "-hint", "throughput", "-t", str(seconds)]
    argv += ["-infer_precision", precision]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    fps = re.search(r"Throughput:\s+([\d.]+)\s+FPS", out)
    count = re.search(r"Count:\s+(\d+)\s+iterations", out)
    if os.waitstatus_to_exitcode(status) != 0 or not fps or not count:
        raise RuntimeError(f"benchmark_app printed no throughput:\n{out[-1500:]}")
    return float(fps.group(1)), int(count.group(1)), usage.ru_utime + usage.ru_stime


def benchmark_app(xml: Path, precision: str, seconds: int = 15) -> AppRun:
    """OpenVINO's own benchmark_app on the IR (THROUGHPUT hint, async requests, random inputs). Its CPU
    per picture is the difference between a short and a full run, so reading and compiling the
    network (the same in both) drop out."""
    _, short_count, short_cpu = _benchmark_app(xml, precision, max(seconds // 3, 3))
    fps, count, cpu = _benchmark_app(xml, precision, seconds)
    per_picture = (cpu - short_cpu) / max(count - short_count, 1) * 1000
    return AppRun(fps, per_picture)


def picture_work_ms(paths: Sequence[Path], detector, rounds: int = 3) -> float:  # type: ignore[no-untyped-def]
    """CPU-ms a folder run spends on each picture besides inference, as `detect image` does it: read and
    decode the file, draw the detector's own boxes on a copy, encode that copy in the input's format.
    The fastest of `rounds` passes over the pictures, on one thread, per picture."""
    import cv2

    from detect_cli.render import draw_detections
    from detect_cli.sources import decode_image, read_file

    boxes = [detector.predict([decode_image(read_file(p)[0])])[0][0] for p in paths]
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for path, dets in zip(paths, boxes, strict=True):
            image = decode_image(read_file(path)[0])
            ok, _ = cv2.imencode(path.suffix, draw_detections(image, dets))
            assert ok, path
        best = min(best, time.process_time() - start)
    return best / len(paths) * 1000


def ceiling(network_cpu_ms: float, work_ms: float) -> float:
    """The most of `benchmark_app`'s images/s a run reaches when each picture also costs `work_ms` of CPU
    on cores that inference keeps busy."""
    return network_cpu_ms / (network_cpu_ms + work_ms)


def layer_ms(xml: Path, precision: str, runs: int = 5) -> dict[str, float]:
    """Milliseconds per inference spent in each kind of layer (OpenVINO's PERF_COUNT, one request on one
    thread, so layers do not overlap), keyed by layer type and the kernel's precision."""
    import numpy as np
    import openvino as ov

    config = {"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": 1}
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    request = compiled.create_infer_request()
    port = compiled.input(0)
    x = np.random.default_rng(0).random(tuple(port.shape)).astype(np.float32)
    request.infer({0: x})  # warm-up
    totals: collections.Counter[str] = collections.Counter()
    for _ in range(runs):
        request.infer({0: x})
        for layer in request.profiling_info:
            kernel = layer.exec_type.rsplit("_", 1)[-1].upper()
            totals[f"{layer.node_type} ({kernel})"] += layer.real_time.total_seconds() * 1000 / runs
    return dict(totals)


def layer_family(kind: str) -> str:
    """'Convolution (I8)' -> 'Convolution', 'FullyConnectedQuantizedLegacy (I8)' -> 'FullyConnected':
    one row per kind of layer whatever its kernel's precision."""
    return kind.split(" (", 1)[0].replace("QuantizedLegacy", "").replace("Quantized", "")


def by_family(times: dict[str, float]) -> dict[str, float]:
    out: collections.Counter[str] = collections.Counter()
    for kind, ms in times.items():
        out[layer_family(kind)] += ms
    return dict(out)
