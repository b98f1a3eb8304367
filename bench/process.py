"""Whole-process races: what a user waits for, start-up included, against `yolo predict`.

RT-DETR-L (built from ultralytics' YAML config with seed 0 and saved as .pt: official weights are not
downloaded; random weights run at the same speed), imgsz 640, CPU, default thresholds. Every contender
is a fresh process, timed from start to exit, with its peak RSS (the child's ru_maxrss):

- one picture (samples/bus.jpg): `detect image bus.jpg -m rtdetr-l.pt` vs `yolo predict model=rtdetr-l.pt
  source=bus.jpg` (goal: detect ≤ 0.4x its wall time);
- a folder of 32 pictures: `detect image folder -m rtdetr-l.pt` vs `yolo predict` on the .pt (goal ≥ 4x
  faster) and vs `yolo predict` on its own OpenVINO export of the same model at the same precision
  (goal ≥ 1.25x), and detect's peak RSS vs `yolo predict` on the .pt (goal ≤ 0.8x).

Both sides save annotated pictures. The caches are warm for both: detect's export and parity record
were made by an untimed first run, ultralytics' OpenVINO export by an untimed `yolo export`. Rounds are
interleaved (every contender once per round, in turn), ratios are taken within each round, and the
medians are printed.

    python bench/process.py [--rounds 3] [--n 32] [--model rtdetr-l]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
BIN = Path(sys.executable).parent

from measure import run_measured  # noqa: E402  (bench/measure.py, found through the path above)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process run to its end; fails loudly on a non-zero exit."""
    code, wall, rss, err = run_measured(argv, env, cwd)
    if code:
        raise SystemExit(f"{' '.join(argv)} exited {code}:\n{err[-2000:]}")
    return wall, rss


def ov_precision(xml: Path, env: dict[str, str]) -> str:
    """The precision OpenVINO's CPU plugin picks by itself for this IR (what `yolo predict` runs),
    asked in a child process (this one stays small)."""
    code = (
        "import sys, openvino as ov; c = ov.Core().compile_model(sys.argv[1], 'CPU', "
        "{'PERFORMANCE_HINT': 'LATENCY'}); "
        "print('bf16' if c.get_property('INFERENCE_PRECISION_HINT') == ov.Type.bf16 else 'fp32')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(xml)], env=env, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--model", default="rtdetr-l")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="detect-process-"))
    try:
        race(args, work)
    finally:  # exports, weights and pictures: hundreds of MB that no one else will use
        shutil.rmtree(work, ignore_errors=True)


def race(args: argparse.Namespace, work: Path) -> None:
    env = {**os.environ, "YOLO_OFFLINE": "1", "DETECT_CACHE_DIR": str(work / "cache")}
    env["YOLO_CONFIG_DIR"] = str(work / "ultralytics-settings")  # its settings and runs stay in here
    folder = work / "images"
    bus = ROOT / "samples" / "bus.jpg"
    detect, yolo = str(BIN / "detect"), str(BIN / "yolo")
    # The pictures and the seeded weights are made in a child, so this process stays small.
    setup = (
        "import sys; sys.path.insert(0, sys.argv[1]); from backends import make_images, seeded_pt; "
        "from pathlib import Path; w = Path(sys.argv[2]); make_images(w / 'images', int(sys.argv[3])); "
        "print(seeded_pt(sys.argv[4], w)[0])"
    )
    argv = [sys.executable, "-c", setup, str(ROOT / "bench"), str(work), str(args.n), args.model]
    pt = Path(subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])

    # Warm caches, untimed: detect's export + parity record, ultralytics' own OpenVINO export.
    timed([detect, "image", str(bus), "-m", str(pt), "--out", str(work / "warm")], env, work)
    timed([yolo, "export", f"model={pt}", "format=openvino", "imgsz=640"], env, work)
    ov_dir = pt.with_name(f"{pt.stem}_openvino_model")
    precision = ov_precision(next(ov_dir.glob("*.xml")), env)

    runs = 0

    def out() -> str:
        nonlocal runs
        runs += 1
        return str(work / "runs" / f"{runs}")

    def yolo_args(model: Path, source: Path) -> list[str]:
        return [yolo, "predict", f"model={model}", f"source={source}", "imgsz=640", f"project={out()}"]

    contenders = {
        "1 picture": {
            "detect": lambda: [detect, "image", str(bus), "-m", str(pt), "--out", out()],
            "yolo predict (.pt)": lambda: yolo_args(pt, bus),
        },
        f"{args.n} pictures": {
            "detect": lambda: [
                detect,
                "image",
                str(folder),
                "-m",
                str(pt),
                "--precision",
                precision,
                "--out",
                out(),
            ],
            "yolo predict (.pt)": lambda: yolo_args(pt, folder),
            f"yolo predict (its OpenVINO export, {precision})": lambda: yolo_args(ov_dir, folder),
        },
    }
    print(
        f"# {os.cpu_count()} CPUs; {args.model} imgsz 640; OpenVINO precision {precision}; "
        f"{args.rounds} interleaved rounds",
        file=sys.stderr,
    )
    results: dict[str, dict[str, list[tuple[float, float]]]] = {
        race: {name: [] for name in runners} for race, runners in contenders.items()
    }
    for r in range(args.rounds):
        for race, runners in contenders.items():
            for name, argv in runners.items():
                wall, rss = timed(argv(), env, work)
                results[race][name].append((wall, rss))
                print(f"  round {r + 1} {race}: {name}: {wall:.2f} s, {rss:.0f} MB", file=sys.stderr)
        shutil.rmtree(work / "runs", ignore_errors=True)

    print(f"\n## Whole process, {args.model}, imgsz 640, CPU: median of {args.rounds} interleaved rounds\n")
    print("| race | run | wall s | peak RSS MB | detect's time ÷ its (each round) | detect's RSS ÷ its |")
    print("|---|---|---:|---:|---:|---:|")
    for race, runs_of in results.items():
        mine = runs_of["detect"]
        for name, got in runs_of.items():
            walls, rsss = [w for w, _ in got], [m for _, m in got]
            if name == "detect":
                time_ratio = rss_ratio = "-"
            else:
                ratios = [a[0] / b[0] for a, b in zip(mine, got, strict=True)]
                time_ratio = f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)})"
                rss_ratio = f"{statistics.median(a[1] / b[1] for a, b in zip(mine, got, strict=True)):.2f}"
            print(
                f"| {race} | {name} | {statistics.median(walls):.2f} | {statistics.median(rsss):.0f} "
                f"| {time_ratio} | {rss_ratio} |"
            )


if __name__ == "__main__":
    main()
