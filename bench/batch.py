"""Batch benchmark: `detect image` on a folder, side by side with ultralytics' own predict, the bare model
forward, and peak memory for 50 vs 1,000 images. Ratios are measured in one run, so a busy machine
slows every column alike.

Models are built from ultralytics' YAML configs with a fixed seed and saved as .pt (no weights can be
downloaded here): random weights, real architecture, so speed is meaningful and detections are not.

    python bench/batch.py [--model rtdetr-l|yolo11n] [--imgsz 320] [--batch 1] [--images 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("YOLO_OFFLINE", "1")

FAMILY = {"rtdetr-l": "rtdetr", "yolo11n": "yolo"}
CONF = {"rtdetr": 0.01, "yolo": 1e-6}  # random weights: the thresholds that still give boxes


def make_images(folder: Path, n: int, size: tuple[int, int], seed0: int = 0) -> Path:
    """Noise with a few shapes, as JPEG, so decoding costs what a photo of that size costs."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(n):
        rng = np.random.default_rng(seed0 + i)
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.rectangle(img, (w // 8, h // 8), (w // 2, h // 2), (0, 0, 255), -1)
        cv2.circle(img, (w * 3 // 4, h * 3 // 4), min(h, w) // 6, (0, 255, 0), -1)
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), img)
    return folder


def seeded_pt(model: str, where: Path) -> Path:
    import torch
    from ultralytics import RTDETR, YOLO

    torch.manual_seed(0)
    cls = RTDETR if FAMILY[model] == "rtdetr" else YOLO
    path = where / f"{model}-seed0.pt"
    cls(f"{model}.yaml").save(path)
    return path


def ultralytics_predict(pt: Path, folder: Path, imgsz: int, conf: float, batch: int, out: Path):  # type: ignore[no-untyped-def]
    """A measurement of ultralytics' own predict on the folder, saving annotated images like
    `yolo predict` does: returns images/s each time it is called."""
    from ultralytics import RTDETR, YOLO

    cls = RTDETR if "rtdetr" in pt.name else YOLO
    model = cls(str(pt))
    kw = {"imgsz": imgsz, "conf": conf, "device": "cpu", "verbose": False, "batch": batch}
    next(iter(model.predict(str(next(folder.iterdir())), **kw)))  # warm-up (and predictor set-up)
    n = len(list(folder.iterdir()))
    rounds = iter(range(1000))

    def measure() -> float:
        name = f"u{next(rounds)}"
        t = time.perf_counter()
        done = sum(
            1 for _ in model.predict(str(folder), stream=True, save=True, project=str(out), name=name, **kw)
        )
        dt = time.perf_counter() - t
        assert done == n, (done, n)
        return n / dt

    return measure


def load_torch_detector(pt: Path, imgsz: int, conf: float):  # type: ignore[no-untyped-def]
    from detect_cli.models import PredictOptions, load, resolve

    return load(
        resolve(str(pt), FAMILY["rtdetr-l" if "rtdetr" in pt.name else "yolo11n"]),
        PredictOptions(conf=conf, imgsz=imgsz, device="cpu"),
    )


def load_auto_detector(pt: Path, imgsz: int, conf: float, cache: Path):  # type: ignore[no-untyped-def]
    """The detector `--backend auto` picks on this CPU (OpenVINO, else ONNX Runtime, else torch),
    exported into a throwaway cache; the export and its parity check happen here, before timing."""
    from detect_cli.backends import load_detector, plan
    from detect_cli.models import PredictOptions, resolve

    os.environ["DETECT_CACHE_DIR"] = str(cache)
    ref = resolve(str(pt), FAMILY["rtdetr-l" if "rtdetr" in pt.name else "yolo11n"])
    options = PredictOptions(conf=conf, imgsz=imgsz, device="cpu")
    return load_detector(ref, options, plan("auto", "cpu"), warn=print)


def detect_image(detector, folder: Path, batch: int, out: Path):  # type: ignore[no-untyped-def]
    """A measurement of `detect image` end to end (discovery, reading, model, annotated images,
    results.jsonl): returns images/s each time it is called."""
    import cv2

    from detect_cli.jobs import ImageJob, run_images
    from detect_cli.writers import read_jsonl

    detector.predict([cv2.imread(str(next(folder.iterdir())))])  # warm-up, as for ultralytics
    rounds = iter(range(1000))
    shares: list[float] = []

    def measure() -> float:
        job = ImageJob(
            (str(folder),), detector.ref, detector.options, out=out / f"d{next(rounds)}", batch=batch
        )
        t = time.perf_counter()
        report, _ = run_images(job, detector=detector)
        dt = time.perf_counter() - t
        assert report.summary.failed == 0
        # The model's own time inside this very run (ultralytics' per-image inference timing, from
        # results.jsonl): its share of the wall time is immune to load that varies between runs.
        forward_s = sum(r["speed_ms"]["inference"] for r in read_jsonl(report.out / "results.jsonl")) / 1000
        shares.append(forward_s / dt)
        return report.summary.processed / dt

    measure.shares = shares  # type: ignore[attr-defined]
    return measure


def bare_forward(detector, folder: Path, batch: int):  # type: ignore[no-untyped-def]
    """A measurement of the model's forward alone, on tensors prepared beforehand exactly as predict
    prepares them: returns images/s each time it is called."""
    import cv2
    import torch

    images = [cv2.imread(str(p)) for p in sorted(folder.iterdir())]
    predictor = detector.model.predictor  # set up by the warm-up
    tensors = [predictor.preprocess(images[i : i + batch]) for i in range(0, len(images), batch)]

    def measure() -> float:
        with torch.inference_mode():
            t = time.perf_counter()
            for x in tensors:
                predictor.model(x)
            dt = time.perf_counter() - t
        return len(images) / dt

    return measure


def best_of(rounds: int, measures: dict[str, Any]) -> dict[str, float]:
    """Each measurement `rounds` times, interleaved, keeping the best: load from other processes on a
    shared machine only ever slows a run down, so the best is the least disturbed."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, measure in measures.items():
            best[name] = max(best.get(name, 0.0), measure())
    return best


def peak_rss_mib(pt: Path, folder: Path, imgsz: int, out: Path) -> float:
    """Peak RSS of a whole `detect image` process on the folder (bench/measure.py: started by a small
    launcher, since a child's ru_maxrss starts from its parent's size, and this process holds torch)."""
    from measure import run_measured

    family = FAMILY["rtdetr-l" if "rtdetr" in pt.name else "yolo11n"]
    cmd = [sys.executable, "-m", "detect_cli", *(["yolo"] if family == "yolo" else []), "image", str(folder)]
    cmd += ["-m", str(pt), "--imgsz", str(imgsz), "--device", "cpu", "-q", "-f", "csv", "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # From the work folder: `python -m` puts the current folder first on sys.path, before PYTHONPATH.
    code, _, rss, err = run_measured(cmd, env, cwd=out.parent)
    if code not in (0, 1):
        raise RuntimeError(f"{cmd} exited {code}: {err[-2000:]}")
    return rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(FAMILY), default="rtdetr-l")
    ap.add_argument("--imgsz", type=int, default=320, help="inference size (640 is slow on a small CPU)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repeats; the best of each is kept")
    ap.add_argument("--rss-imgsz", type=int, default=64)
    ap.add_argument("--skip-rss", action="store_true")
    args = ap.parse_args()

    import torch

    family = FAMILY[args.model]
    conf = CONF[family]
    work = Path(tempfile.mkdtemp(prefix="detect-bench-"))
    try:
        pt = seeded_pt(args.model, work)
        folder = make_images(work / "imgs", args.images, (480, 640))
        print(
            f"settings: {args.model} built from {args.model}.yaml (seed 0, random weights), "
            f"imgsz {args.imgsz}, conf {conf}, batch {args.batch}, {args.images} images 640x480 JPEG, CPU, "
            f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores"
        )
        detector = load_torch_detector(pt, args.imgsz, conf)
        auto = load_auto_detector(pt, args.imgsz, conf, work / "cache")
        print(f"--backend auto runs {auto.backend} ({auto.precision}) here")
        measures = {
            "ultralytics predict (.pt)": ultralytics_predict(
                pt, folder, args.imgsz, conf, args.batch, work / "u"
            ),
            "detect image (torch)": detect_image(detector, folder, args.batch, work / "d"),
            "detect image (--backend auto)": detect_image(auto, folder, args.batch, work / "a"),
            "bare forward": bare_forward(detector, folder, args.batch),
        }
        best = best_of(args.rounds, measures)
        ultra, ours, bare = (
            best["ultralytics predict (.pt)"],
            best["detect image (torch)"],
            best["bare forward"],
        )
        columns = {
            "ultralytics predict (.pt)": ultra,
            "detect image (torch)": ours,
            "detect image (--backend auto)": best["detect image (--backend auto)"],
        }
        print(
            f"\nthroughput, images/s, best of {args.rounds} interleaved rounds "
            "(end to end: read, model, annotated images written)"
        )
        for name, v in columns.items():
            ratio = f"{v / ultra:5.2f}x ultralytics" if v else "(not available in this build)"
            print(f"  {name:32s} {v:7.2f}  {ratio}" if v else f"  {name:32s}     n/a  {ratio}")
        print(f"\nbare model forward (pre-decoded, pre-processed tensors): {bare:.2f} images/s")
        print(f"  detect image end to end / bare forward: {ours / bare:.2f}  (goal >= 0.9)")
        print(f"  ultralytics predict / bare forward:     {ultra / bare:.2f}  (for reference)")
        share = max(measures["detect image (torch)"].shares)
        print(
            f"  inside the detect run (best round): model forward time / wall time = {share:.2f} "
            "(the same ratio, measured inside one run, so free of load that changes between runs)"
        )

        if not args.skip_rss:
            rss_pt = pt
            big = make_images(work / "many", 1000, (96, 128), seed0=10_000)
            small = work / "few"
            small.mkdir()
            for p in sorted(big.iterdir())[:50]:
                shutil.copy(p, small / p.name)
            # A first run makes the export at this imgsz (loading PyTorch): untimed, so both counts
            # below measure what a run on a warm cache holds.
            peak_rss_mib(rss_pt, small, args.rss_imgsz, work / "o-warm")
            r50 = peak_rss_mib(rss_pt, small, args.rss_imgsz, work / "o50")
            r1000 = peak_rss_mib(rss_pt, big, args.rss_imgsz, work / "o1000")
            print(
                f"\npeak RSS of `detect image`, each in its own process (imgsz {args.rss_imgsz}, 128x96 JPEG)"
            )
            print(f"  50 images: {r50:.0f} MiB   1000 images: {r1000:.0f} MiB")
            print(f"  ratio {r1000 / r50:.3f}  (goal <= 1.1)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
