"""Latency against the work it depends on, on the export runtime (OpenVINO, else ONNX Runtime), for
RT-DETR-L and YOLO11n built from ultralytics' YAML configs with seed 0 (nothing is downloaded):

- ms per picture against the number of boxes over `--conf`. YOLO's class-wise NMS takes every anchor
  whose best class scores over `--conf` (up to 8,400 at imgsz 640), so its cost grows with them; an
  RT-DETR's decoder already returns its 300 queries, and what follows is a threshold and a scale. The
  thresholds are read from the network's own output on one picture: the score of its N-th best anchor
  (or query), so exactly N boxes go past `--conf` on that picture, and that picture is run again at
  each threshold (random weights score low, so the thresholds are small; the work is the same as
  for a trained network with N candidates);
- ms per picture against the number of pictures per call (detect's `--batch`) in throughput mode, as a
  folder run compiles it: the export takes one picture, the runtime keeps several in flight.

Every setting runs in turn, for several rounds, each round starting one setting further on; ms are the
median, ratios are taken within each round (side by side, under the same load), then the median. About a
minute on 2 cores at the default size.

    python bench/latency.py [--imgsz 320] [--rounds 3] [--models rtdetr-l,yolo11n]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends import make_images, seeded_pt  # noqa: E402  (bench/backends.py, beside this file)

BOXES = {"yolo": (10, 100, 1000, None), "rtdetr": (1, 10, 100, None)}  # None: all of them
BATCHES = (1, 2, 4, 8)
T = TypeVar("T")


def thresholds(detector, image, counts: tuple[int | None, ...]) -> list[tuple[float, int]]:  # type: ignore[no-untyped-def]
    """(conf, boxes over it), one per count asked for, with as near that many of the network's boxes on
    `image` scoring over `conf` as its scores allow (random weights give many equal scores): each
    anchor's best class score for YOLO, each query's score for RT-DETR."""
    import numpy as np

    from detect_cli.runtime import letterbox

    square, _ = letterbox(image, detector.options.imgsz, detector.family == "rtdetr")
    output, _ = detector.session.run(detector.session.prepare(square))
    rows = output[0]
    scores = rows[:, 4] if detector.family == "rtdetr" else rows[4:].max(0)
    # each distinct score as a threshold (and 0: all of them), with the count of scores over it
    confs = np.append(np.unique(scores), 0.0)
    over = (scores[None, :] > confs[:, None]).sum(1)
    found: dict[int, float] = {}
    for n in counts:
        i = int(np.abs(over - (len(scores) if n is None else n)).argmin())
        found.setdefault(int(over[i]), float(confs[i]))
    return [(conf, n) for n, conf in sorted(found.items())]


def turn(settings: Sequence[T], round_: int) -> list[T]:
    """The settings in the order round `round_` runs them: each round starts one further on, so none
    is always the first to run after another's."""
    shift = round_ % len(settings)
    return [*settings[shift:], *settings[:shift]]


def timed(run: Callable[[], int], pictures: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000 / pictures


def by_boxes(detector, image, rounds: int, repeat: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Rows of ms per picture at each threshold, LATENCY mode, one picture a call."""
    base = detector.options
    levels = thresholds(detector, image, BOXES[detector.family])
    kept: dict[float, int] = {}
    post: dict[float, list[float]] = {conf: [] for conf, _ in levels}
    times: dict[float, list[float]] = {conf: [] for conf, _ in levels}

    def run(conf: float) -> Callable[[], int]:
        def go() -> int:
            detector.options = dataclasses.replace(base, conf=conf)
            for _ in range(repeat):
                [(dets, speed)] = detector.predict([image])
                post[conf].append(speed.postprocess)
                kept[conf] = len(dets)
            return repeat

        return go

    for conf, _ in levels:
        run(conf)()  # warm-up
        post[conf].clear()
    for r in range(rounds):
        for conf, _ in turn(levels, r):
            times[conf].append(timed(run(conf), repeat))
    detector.options = base
    fewest = times[levels[0][0]]
    rows = []
    for conf, over in levels:
        ratios = [t / f for t, f in zip(times[conf], fewest, strict=True)]
        rows.append(
            f"| {detector.ref.name} | {conf:.5g} | {over} | {kept[conf]} "
            f"| {statistics.median(times[conf]):.1f} "
            f"| {statistics.median(post[conf]):.2f} "
            f"| {statistics.median(post[conf]) / statistics.median(post[levels[0][0]]):.1f} "
            f"| {statistics.median(ratios):.2f} "
            f"({', '.join(f'{r:.2f}' for r in ratios)}) |"
        )
    return rows


def by_batch(detector, images: list, rounds: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Rows of ms per picture with `BATCHES` pictures a call, THROUGHPUT mode."""
    times: dict[int, list[float]] = {b: [] for b in BATCHES}

    def run(batch: int) -> Callable[[], int]:
        def go() -> int:
            for i in range(0, len(images), batch):
                detector.predict(images[i : i + batch])
            return len(images)

        return go

    detector.predict(images[:2])  # warm-up
    for r in range(rounds):
        for batch in turn(BATCHES, r):
            times[batch].append(timed(run(batch), len(images)))
    rows = []
    for batch in BATCHES:
        ratios = [t / o for t, o in zip(times[batch], times[1], strict=True)]
        rows.append(
            f"| {detector.ref.name} | {batch} | {detector.in_flight} | {statistics.median(times[batch]):.1f} "
            f"| {statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) |"
        )
    return rows


def measure(args: argparse.Namespace, work: Path) -> None:
    os.environ["DETECT_CACHE_DIR"] = str(work / "cache")
    import cv2

    from detect_cli import backends
    from detect_cli.models import PredictOptions, import_ultralytics, resolve

    backend = next((b for b in ("openvino", "onnx") if backends.installed(b)), None)  # type: ignore[arg-type]
    if backend is None:
        sys.exit("bench/latency.py needs openvino or onnxruntime (pip install 'detect-cli[cpu]')")
    import_ultralytics()
    paths = make_images(work / "images", 8)
    images = [cv2.imread(str(p)) for p in paths]
    bus = cv2.imread(str(ROOT / "samples" / "bus.jpg"))
    boxes_rows: list[str] = []
    batch_rows: list[str] = []
    for name in args.models.split(","):
        pt, family = seeded_pt(name, work)
        ref = resolve(str(pt), family)  # type: ignore[arg-type]
        options = PredictOptions(conf=0.25, imgsz=args.imgsz, device="cpu")  # ultralytics' max_det, iou
        planned = backends.plan(backend, "cpu", "fp32")
        detector = backends.load(ref, options, planned)
        boxes_rows += by_boxes(detector, bus, args.rounds, repeat=args.repeat)
        print(f"  {name}: boxes done", file=sys.stderr, flush=True)
        detector = backends.load(ref, options, dataclasses.replace(planned, mode="throughput"))
        batch_rows += by_batch(detector, images, args.rounds)
        print(f"  {name}: batches done", file=sys.stderr, flush=True)
    print(
        f"\n## Latency against boxes over --conf: {backend} fp32, imgsz {args.imgsz}, bus.jpg, one picture a "
        f"call, median of {args.rounds} rounds x {args.repeat}\n"
    )
    print(
        "| model | --conf | boxes over it | boxes kept | ms/picture | post-processing ms "
        "| post-processing x fewest | ms/picture x fewest (each round) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(boxes_rows))
    print(
        f"\n## Latency against pictures per call: {backend} fp32 throughput mode, imgsz {args.imgsz}, "
        f"{len(images)} pictures, median of {args.rounds} rounds\n"
    )
    print("| model | pictures per call | in flight | ms/picture | x one a call (each round) |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(batch_rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="rtdetr-l,yolo11n")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="pictures per setting and round (boxes table)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="detect-latency-"))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
