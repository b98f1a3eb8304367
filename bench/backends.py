"""Folder throughput of each inference backend against `yolo predict`, measured side by side in one run.

For RT-DETR-L and YOLO11n (built from ultralytics' YAML configs with seed 0 and saved as .pt: official
weights are not downloaded, and random weights run at the same speed), on the same 32 images (the two
samples and 30 generated ones) at imgsz 640, on the CPU:

- baseline: ultralytics' own predict on the folder with the .pt (what `yolo predict model=x.pt
  source=folder` runs), saving annotated images;
- `detect image folder --backend torch|onnx|openvino|auto`: the whole run (reading, inference, results.jsonl
  and annotated images), with the model loaded (and exported, once, into a fresh cache) beforehand;
- a reference row: the torch backend with torch on every core (ultralytics sets torch to cpu_count - 1
  threads on the CPU, so one thread on a 2-core machine).

Each contender gets one warm-up image, then all of them run in turn, for several rounds. The table prints
the median images/s, the ratio to the baseline taken within each round (side by side, under the same
load) and its median, the one-off export/load time, and the parity of each export with PyTorch
(measured right after the export). A second table measures whether batching helps: inference alone
over the same images in calls of 1 and of 4 (exports with a fixed batch of 4 for ONNX Runtime and
OpenVINO, whose static graphs take one batch size).

A third table (first, `--int8-model`, default RT-DETR-L) measures OpenVINO INT8 (`--precision int8`,
calibrated on the same `--n` pictures) against OpenVINO bf16, both folder runs end to end as above, and
against `yolo predict` on ultralytics' own INT8 OpenVINO export (`quantize=8`, calibrated on the same
pictures through a data.yaml), quantization and export time excluded (printed beside). Then what bounds
those ratios on this CPU (bench/limits.py): each of the three IRs in OpenVINO's `benchmark_app` (in turn,
each round), each run as a share of its own IR's limit, the time of each kind of layer at bf16 and INT8,
and the most INT8 could gain on bf16 end to end given the CPU a folder run spends on each picture.

The throughput table races `detect image` on the folder against `benchmark_app` on the same IR and
prints the ceiling the picture work (decoding, drawing, encoding) leaves on this machine's cores.

    python bench/backends.py [--models rtdetr-l,yolo11n] [--imgsz 640] [--n 32] [--rounds 3]
    python bench/backends.py --only-int8 [--int8-model rtdetr-l]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import limits  # noqa: E402  (bench/, beside this file)

CONF = {"rtdetr": 0.01, "yolo": 1e-6}  # random weights score low; a fixed max_det bounds the drawing work
MAX_DET = 20
BASELINE = "yolo predict (.pt), baseline"
ULTRALYTICS_INT8 = "yolo predict on ultralytics' INT8 OpenVINO export"


def median(values: list[float]) -> float:
    return statistics.median(values)


def make_images(folder: Path, n: int) -> list[Path]:
    """The samples plus generated scenes (shapes on gradients) at common photo sizes, `n` in all."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sample in sorted((ROOT / "samples").glob("*.jpg"))[:n]:
        paths.append(Path(shutil.copy(sample, folder / sample.name)))
    sizes = [(480, 640), (720, 1280), (1080, 810), (800, 800)]
    rng = np.random.default_rng(0)
    for i in range(n - len(paths)):
        h, w = sizes[i % len(sizes)]
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
        img = np.clip(ramp * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        for _ in range(12):
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            if rng.random() < 0.5:
                cv2.rectangle(
                    img,
                    (x, y),
                    (x + int(rng.integers(20, w // 3)), y + int(rng.integers(20, h // 3))),
                    color,
                    -1,
                )
            else:
                cv2.circle(img, (x, y), int(rng.integers(10, min(h, w) // 6)), color, -1)
        path = folder / f"gen_{i:02d}.jpg"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def seeded_pt(name: str, folder: Path) -> tuple[Path, str]:
    """`name` built from its YAML config with seed 0 and saved, once per folder (a checkpoint records
    when it was saved: saving again would give other bytes, hence another export)."""
    import torch
    from ultralytics import RTDETR, YOLO

    family = "rtdetr" if name.startswith("rtdetr") else "yolo"
    if (folder / f"{name}-seed0.pt").is_file():
        return folder / f"{name}-seed0.pt", family
    torch.manual_seed(0)
    model = (RTDETR if family == "rtdetr" else YOLO)(f"{name}.yaml")
    path = folder / f"{name}-seed0.pt"
    model.save(path)
    return path, family


def baseline_runner(pt: Path, family: str, images: Path, imgsz: int, work: Path, n: int):  # type: ignore[no-untyped-def]
    """ultralytics' predict on the folder with the .pt, saving annotated images, as `yolo predict` does."""
    from ultralytics import RTDETR, YOLO

    model = (RTDETR if family == "rtdetr" else YOLO)(str(pt))
    kw = {"imgsz": imgsz, "conf": CONF[family], "max_det": MAX_DET, "device": "cpu", "verbose": False}
    list(model.predict(str(sorted(images.iterdir())[0]), save=False, **kw))  # warm-up

    def run(round_: int) -> float:
        start = time.perf_counter()
        results = model.predict(
            str(images), save=True, stream=True, project=str(work), name=f"base-{round_}", **kw
        )
        with contextlib.redirect_stdout(sys.stderr):  # its "Results saved to" line stays off the table
            count = sum(1 for _ in results)
        assert count == n, count
        return time.perf_counter() - start

    return run


def detect_runner(detector, images: Path, work: Path, n: int, threads: int | None = None):  # type: ignore[no-untyped-def]
    """`detect image <folder>` with a loaded detector: reading, inference, results.jsonl, annotated images."""
    import cv2
    import torch

    from detect_cli.jobs import ImageJob, run_images

    detector.predict([cv2.imread(str(sorted(images.iterdir())[0]))])  # warm-up

    def run(round_: int) -> float:
        job = ImageJob(
            sources=(str(images),), model=detector.ref, options=detector.options, out=work / f"r{round_}"
        )
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            start = time.perf_counter()
            report, _ = run_images(job, detector=detector)
            seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(before)
        assert report.summary.processed == n and report.summary.failed == 0, report.summary
        return seconds

    return run


def batch_probe(
    pt: Path, family: str, backend: str, paths: list[Path], imgsz: int, work: Path, rounds: int
) -> dict[int, float]:
    """Inference-only images/s in calls of 1 and of 4 images, best of `rounds` (alternating); exported
    with a fixed batch of 4 for ONNX Runtime and OpenVINO, whose static graphs take one batch size."""
    import cv2
    from ultralytics import RTDETR, YOLO

    from detect_cli.backends.export import _quiet

    cls = RTDETR if family == "rtdetr" else YOLO
    imgs = [cv2.imread(str(p)) for p in paths]
    kw = {"imgsz": imgsz, "conf": CONF[family], "max_det": MAX_DET, "device": "cpu", "verbose": False}
    models = {}
    for batch in (1, 4):
        if backend == "torch":
            models[batch] = cls(str(pt))
        else:
            folder = work / f"{family}-{backend}-b{batch}"
            folder.mkdir(parents=True)
            src = cls(str(pt))
            src.model.pt_path = str(folder / "model.pt")
            with _quiet():
                artifact = src.export(format=backend, imgsz=imgsz, batch=batch, device="cpu")
            models[batch] = cls(str(artifact)) if family == "rtdetr" else YOLO(str(artifact), task="detect")
        with _quiet():
            models[batch].predict(imgs[:batch], **kw)  # warm-up
    rates: dict[int, float] = {1: 0.0, 4: 0.0}
    for _ in range(rounds):
        for batch, model in models.items():
            start = time.perf_counter()
            with _quiet():
                for i in range(0, len(imgs), batch):
                    model.predict(imgs[i : i + batch], **kw)
            rates[batch] = max(rates[batch], len(imgs) / (time.perf_counter() - start))
    return rates


def parity_note(backends, pt: Path, detector) -> str:  # type: ignore[no-untyped-def]
    if detector.backend == "torch":
        return "-"
    digest = backends.weights_digest(str(pt))  # the export of these very weights (not an older save)
    entry = next(
        e
        for e in backends.cached_exports()
        if (e.manifest["backend"], e.manifest["weights_sha256"]) == (detector.backend, digest)
    )
    p = entry.parity(detector.precision)
    if p is None:
        return "-"
    verdict = "ok" if p.ok else "FAILS"
    return (
        f"{p.matched}/{p.reference} matched, IoU {p.mean_iou:.3f}, Δscore {p.max_score_diff:.4f} ({verdict})"
    )


def throughput_vs_benchmark_app(
    backends, ref, family: str, imgsz: int, images: Path, work: Path, n: int, rounds: int
) -> str:  # type: ignore[no-untyped-def]
    """`detect image <folder>` end to end (THROUGHPUT mode, as a folder run compiles it: reading,
    inference, results.jsonl, annotated pictures) against benchmark_app on the same IR and precision,
    interleaved, `rounds` times; the median ratio."""
    from detect_cli.models import PredictOptions

    options = PredictOptions(conf=CONF[family], imgsz=imgsz, device="cpu", max_det=MAX_DET)
    plan = dataclasses.replace(backends.plan("openvino", "cpu"), mode="throughput")
    detector = backends.load(ref, options, plan)
    entry = next(
        e
        for e in backends.cached_exports()
        if e.manifest["backend"] == "openvino"
        and e.manifest["source"] == ref.location
        and e.manifest["imgsz"] == imgsz
    )
    xml = next(entry.artifact.glob("*.xml"))
    run = detect_runner(detector, images, work, n)
    ours: list[float] = []
    theirs: list[limits.AppRun] = []
    for r in range(rounds):
        ours.append(n / run(r))
        theirs.append(limits.benchmark_app(xml, detector.precision))
        print(
            f"  throughput round {r + 1}: detect {ours[-1]:.2f} img/s, "
            f"benchmark_app {theirs[-1].fps:.2f} FPS",
            file=sys.stderr,
        )
    ratios = [a / b.fps for a, b in zip(ours, theirs, strict=True)]
    network = median([t.cpu_ms for t in theirs])
    work_ms = limits.picture_work_ms(sorted(images.iterdir()), detector)
    return (
        f"| {ref.name} | openvino {detector.precision}, {detector.in_flight} requests | {median(ours):.2f} "
        f"| {median([t.fps for t in theirs]):.2f} "
        f"| {median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) "
        f"| {network:.1f} | {work_ms:.1f} | {limits.ceiling(network, work_ms):.2f} |"
    )


def ultralytics_int8_runner(pt: Path, family: str, images: Path, imgsz: int, work: Path, n: int):  # type: ignore[no-untyped-def]
    """`yolo predict` on ultralytics' own INT8 OpenVINO export, calibrated on the same pictures (a
    data.yaml whose val split is the folder); returns (runner, export seconds, the IR's .xml)."""
    from ultralytics import RTDETR, YOLO

    from detect_cli.backends.export import _quiet

    cls = RTDETR if family == "rtdetr" else YOLO
    data = work / "calibration.yaml"
    data.write_text(
        f"path: {images}\ntrain: .\nval: .\nnames:\n" + "".join(f"  {i}: c{i}\n" for i in range(80)),
        encoding="utf-8",
    )
    src = cls(str(pt))
    folder = work / "ultralytics-int8"
    folder.mkdir(parents=True, exist_ok=True)
    src.model.pt_path = str(folder / "model.pt")
    start = time.perf_counter()
    with _quiet():
        artifact = src.export(
            format="openvino", quantize=8, data=str(data), imgsz=imgsz, batch=1, device="cpu"
        )
    seconds = time.perf_counter() - start
    model = cls(str(artifact)) if family == "rtdetr" else YOLO(str(artifact), task="detect")
    kw = {"imgsz": imgsz, "conf": CONF[family], "max_det": MAX_DET, "device": "cpu", "verbose": False}
    with _quiet():
        list(model.predict(str(sorted(images.iterdir())[0]), save=False, **kw))  # warm-up

    def run(round_: int) -> float:
        start = time.perf_counter()
        with _quiet():
            results = model.predict(
                str(images), save=True, stream=True, project=str(work), name=f"int8-{round_}", **kw
            )
            count = sum(1 for _ in results)
        assert count == n, count
        return time.perf_counter() - start

    return run, seconds, next(Path(artifact).glob("*.xml"))


def int8_table(args: argparse.Namespace, work: Path, images: Path) -> None:
    """OpenVINO INT8 against bf16 (and fp32 where the CPU has no bf16), and `yolo predict` on
    ultralytics' INT8 export: folder images/s, the median of interleaved rounds."""
    from detect_cli import backends, quantize
    from detect_cli.models import PredictOptions, resolve

    name = args.int8_model
    pt, family = seeded_pt(name, work)
    ref = resolve(str(pt), family)  # type: ignore[arg-type]
    options = PredictOptions(conf=CONF[family], imgsz=args.imgsz, device="cpu", max_det=MAX_DET)
    runners: dict[str, tuple] = {}  # type: ignore[type-arg]
    irs: dict[str, Path] = {}  # label -> the IR it runs, for benchmark_app
    calibration = quantize.from_folder(images)
    for precision in ("bf16", "int8"):
        start = time.perf_counter()
        planned = backends.plan(
            "openvino", "cpu", precision, calibration=calibration if precision == "int8" else None
        )
        notes: list[str] = []
        detector = backends.load(ref, options, dataclasses.replace(planned, mode="throughput"), notes.append)
        made = "export + quantize + " if precision == "int8" else "export + "
        one_off = f"{made}load {time.perf_counter() - start:.0f} s"
        label = f"detect --backend openvino --precision {precision}"
        runners[label] = (
            detect_runner(detector, images, work / f"int8-{precision}", args.n),
            f"openvino {detector.precision}",
            one_off,
            parity_note(backends, pt, detector) if precision != "int8" else _int8_parity(backends, pt),
        )
        irs[label] = _ir_of(backends, pt, precision)
        int8_detector = detector
    try:
        run, seconds, xml = ultralytics_int8_runner(pt, family, images, args.imgsz, work, args.n)
        irs[ULTRALYTICS_INT8] = xml
        runners[ULTRALYTICS_INT8] = (
            run,
            "openvino int8",
            f"export {seconds:.0f} s",
            "-",
        )
    except Exception as e:  # its exporter's calibration data rules: say why, keep the rest
        print(f"  ultralytics' INT8 export not measured: {type(e).__name__}: {e}", file=sys.stderr)
    times: dict[str, list[float]] = {label: [] for label in runners}
    for r in range(args.rounds):
        for label, (run_, *_rest) in runners.items():
            times[label].append(run_(r))
            print(
                f"  {name} int8 round {r + 1}: {label}: {args.n / times[label][-1]:.2f} img/s",
                file=sys.stderr,
            )
    bf16 = times["detect --backend openvino --precision bf16"]
    print(
        f"\n## OpenVINO INT8: {name}, {args.n} images (also the calibration set), imgsz {args.imgsz}, "
        f"median of {args.rounds} rounds\n"
    )
    print(
        "| model | run | backend precision | images/s | x openvino bf16 (each round) | one-off "
        "| parity with PyTorch |"
    )
    print("|---|---|---|---:|---:|---|---|")
    for label, (_, ran, one_off, parity) in runners.items():
        ratios = [b / t for b, t in zip(bf16, times[label], strict=True)]
        print(
            f"| {name} | {label} | {ran} | {args.n / median(times[label]):.2f} | {median(ratios):.2f} "
            f"({', '.join(f'{x:.2f}' for x in ratios)}) | {one_off} | {parity} |",
            flush=True,
        )
    int8_limits(args, images, int8_detector, times, irs)


def _ir_of(backends, pt: Path, precision: str) -> Path:  # type: ignore[no-untyped-def]
    """The .xml of the cached OpenVINO export of `pt` at `precision` (bf16 runs the fp32 export)."""
    digest = backends.weights_digest(str(pt))
    stored = "int8" if precision == "int8" else "fp32"
    entry = next(
        e
        for e in backends.cached_exports()
        if e.manifest["backend"] == "openvino"
        and e.manifest["precision"] == stored
        and e.manifest["weights_sha256"] == digest
    )
    return next(entry.artifact.glob("*.xml"))


def int8_limits(args, images: Path, detector, times: dict, irs: dict[str, Path]) -> None:  # type: ignore[no-untyped-def, type-arg]
    """What bounds the INT8 table's ratios on this CPU: each IR in OpenVINO's own benchmark_app (in turn,
    `rounds` times), each run end to end as a share of its own IR's limit, the time of each kind of
    layer at bf16 and INT8, and the most a folder run's INT8 could gain on bf16 with its picture work."""
    from detect_cli.runtime import INT8_FLOAT

    bf16_label = "detect --backend openvino --precision bf16"
    # Both INT8 networks run their float layers as detect runs them: the same precision, a fair race.
    precisions = {label: "bf16" if label == bf16_label else INT8_FLOAT for label in irs}
    apps: dict[str, list[limits.AppRun]] = {label: [] for label in irs}
    for r in range(args.rounds):
        for label, xml in irs.items():
            apps[label].append(limits.benchmark_app(xml, precisions[label]))
            print(f"  benchmark_app round {r + 1}: {label}: {apps[label][-1].fps:.2f} FPS", file=sys.stderr)
    base = apps[bf16_label]
    print(
        f"\n### What bounds it: each IR in benchmark_app -hint throughput, median of {args.rounds} rounds\n"
    )
    print(
        "| IR of | benchmark_app FPS | x bf16 (each round) | CPU-ms a picture | run end to end, images/s "
        "| share of its IR's limit |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, runs in apps.items():
        ratios = [r.fps / b.fps for r, b in zip(runs, base, strict=True)]
        fps = median([r.fps for r in runs])
        e2e = args.n / median(times[label])
        print(
            f"| {label} | {fps:.2f} | {median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) "
            f"| {median([r.cpu_ms for r in runs]):.0f} | {e2e:.2f} | {e2e / fps:.2f} |"
        )
    ours = "detect --backend openvino --precision int8"
    layers = {
        p: limits.by_family(limits.layer_ms(irs[lab], prec))
        for lab, p, prec in ((bf16_label, "bf16", "bf16"), (ours, "int8", INT8_FLOAT))
    }
    print("\n| layer kind (one thread, ms per picture) | bf16 | int8 | speed-up |")
    print("|---|---:|---:|---:|")
    for kind in sorted(layers["bf16"], key=lambda k: -layers["bf16"][k])[:6]:
        a, b = layers["bf16"][kind], layers["int8"].get(kind, 0.0)
        print(f"| {kind} | {a:.1f} | {b:.1f} | {a / b if b else float('inf'):.2f}x |")
    a, b = sum(layers["bf16"].values()), sum(layers["int8"].values())
    print(f"| all | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    work = limits.picture_work_ms(sorted(images.iterdir()), detector)
    bf16_cpu, int8_cpu = (median([r.cpu_ms for r in apps[k]]) for k in (bf16_label, ours))
    alone = median([r.fps / b.fps for r, b in zip(apps[ours], base, strict=True)])
    print(
        f"\nPicture work of a folder run (decode, draw, encode): {work:.1f} CPU-ms a picture; with it, INT8 "
        f"can run at most {(bf16_cpu + work) / (int8_cpu + work):.2f}x bf16 end to end on this CPU "
        f"(benchmark_app alone: {alone:.2f}x).",
        flush=True,
    )


def _int8_parity(backends, pt: Path) -> str:  # type: ignore[no-untyped-def]
    digest = backends.weights_digest(str(pt))
    entry = next(
        e
        for e in backends.cached_exports()
        if e.manifest["precision"] == "int8" and e.manifest["weights_sha256"] == digest
    )
    p = entry.parity("int8")
    if p is None:
        return "-"
    return (
        f"{p.matched}/{p.reference} matched, IoU {p.mean_iou:.3f}, Δscore {p.max_score_diff:.4f} "
        f"({'ok' if p.ok else 'FAILS'}, int8 tolerance)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="rtdetr-l,yolo11n")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--no-batch-probe", action="store_true")
    parser.add_argument("--only-throughput", action="store_true", help="only the benchmark_app comparison")
    parser.add_argument("--int8-model", default="rtdetr-l", help="the model of the INT8 table")
    parser.add_argument("--no-int8", action="store_true", help="leave out the INT8 table")
    parser.add_argument("--only-int8", action="store_true", help="only the INT8 table")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="detect-bench-"))
    try:
        measure(args, work)
    finally:  # exports, compiled blobs, weights and pictures: gigabytes that no one else will use
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    os.environ["DETECT_CACHE_DIR"] = str(work / "cache")  # a fresh cache: the export is part of the run
    from detect_cli import backends
    from detect_cli.models import PredictOptions, import_ultralytics, resolve

    import_ultralytics()
    import torch

    images = work / "images"
    paths = make_images(images, args.n)
    cores = os.cpu_count() or 1
    print(
        f"# {cores} CPUs, torch {torch.__version__}, imgsz {args.imgsz}, {len(paths)} images, "
        f"{args.rounds} rounds, backends: {', '.join(b for b, ok in backends.availability().items() if ok)}",
        file=sys.stderr,
    )
    int8 = backends.installed("openvino") and importlib.util.find_spec("nncf") is not None
    if int8 and not args.no_int8:
        int8_table(args, work, images)
    if args.only_int8:
        return
    if backends.installed("openvino"):
        rows = []
        for name in args.models.split(","):
            pt, family = seeded_pt(name, work)
            ref = resolve(str(pt), family)  # type: ignore[arg-type]
            rows.append(
                throughput_vs_benchmark_app(
                    backends, ref, family, args.imgsz, images, work / f"tput-{name}", args.n, args.rounds
                )
            )
        print(
            f"\n## OpenVINO throughput: detect end to end vs benchmark_app, {args.n} images, "
            f"imgsz {args.imgsz}\n"
        )
        print(
            "| model | detect runs | detect images/s | benchmark_app FPS | ratio (each round) "
            "| benchmark_app CPU-ms a picture | picture work CPU-ms | ceiling |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows), flush=True)
    if args.only_throughput:
        return
    table: list[str] = []
    for name in args.models.split(","):
        pt, family = seeded_pt(name, work)
        ref = resolve(str(pt), family)  # type: ignore[arg-type]
        options = PredictOptions(conf=CONF[family], imgsz=args.imgsz, device="cpu", max_det=MAX_DET)
        runners = {
            BASELINE: (
                baseline_runner(pt, family, images, args.imgsz, work / name, args.n),
                "torch fp32",
                "-",
                "-",
            )
        }
        plans = [
            ("torch", None, None),
            ("torch", None, cores),
            ("onnx", None, None),
            ("openvino", "fp32", None),
            ("auto", None, None),
        ]
        for backend, precision, threads in plans:
            if backend in backends.EXPORTED and not backends.installed(backend):  # type: ignore[arg-type]
                continue
            notes: list[str] = []
            start = time.perf_counter()
            planned = backends.plan(backend, "cpu", precision)
            planned = dataclasses.replace(planned, mode="throughput")  # a folder run's mode (jobs/image.py)
            detector = backends.load(ref, options, planned, notes.append)
            load_s = time.perf_counter() - start
            label = f"detect --backend {backend}" + (f" --precision {precision}" if precision else "")
            if threads:
                label += f" (reference: torch on {threads} threads)"
            one_off = (
                f"{'export + ' if any(n.startswith('exporting') for n in notes) else ''}load {load_s:.1f} s"
            )
            out = work / f"{name}-{backend}-{precision}-{threads}"
            runners[label] = (
                detect_runner(detector, images, out, args.n, threads),
                f"{detector.backend} {detector.precision}",
                one_off,
                parity_note(backends, pt, detector),
            )
        times: dict[str, list[float]] = {label: [] for label in runners}
        for r in range(args.rounds):
            for label, (run, *_rest) in runners.items():
                times[label].append(run(r))
                print(
                    f"  {name} round {r + 1}: {label}: {args.n / times[label][-1]:.2f} img/s", file=sys.stderr
                )
        base = times[BASELINE]
        for label, (_, ran, one_off, parity) in runners.items():
            # Ratios are taken within each round (side by side, under the same load), then the median.
            ratios = [b / t for b, t in zip(base, times[label], strict=True)]
            table.append(
                f"| {name} | {label} | {ran} | {args.n / median(times[label]):.2f} | {median(ratios):.2f} "
                f"({', '.join(f'{x:.1f}' for x in ratios)}) | {one_off} | {parity} |"
            )
    print(
        f"\n## Folder throughput: {args.n} images, imgsz {args.imgsz}, CPU, median of {args.rounds} rounds\n"
    )
    print(
        "| model | run | backend precision | images/s | x yolo predict (each round) | one-off "
        "| parity with PyTorch |"
    )
    print("|---|---|---|---:|---:|---|---|")
    print("\n".join(table), flush=True)

    if not args.no_batch_probe:
        print(f"\n## Batching: inference-only images/s, calls of 1 vs 4 images, best of {args.rounds}\n")
        print("| model | backend | batch 1 | batch 4 | gain |")
        print("|---|---|---:|---:|---:|")
        for name in args.models.split(","):
            pt, family = work / f"{name}-seed0.pt", "rtdetr" if name.startswith("rtdetr") else "yolo"
            for backend in ("torch", *(b for b in backends.EXPORTED if backends.installed(b))):
                r = batch_probe(pt, family, backend, paths, args.imgsz, work / "batch", args.rounds)
                print(f"| {name} | {backend} | {r[1]:.2f} | {r[4]:.2f} | {r[4] / r[1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
