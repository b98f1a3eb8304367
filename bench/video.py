"""Video throughput: end-to-end `detect video` fps against the model alone, side by side in one run.

For each model and clip it times, on the same loaded model and the same frames:
  model only  - `Detector.predict` on frames already decoded into memory (pre/inference/postprocess);
  end to end  - `pipeline.run_video`: open, decode, detect, draw, encode the annotated video, frames.jsonl;
  tracked     - the same end to end with `--track` (ByteTrack, ultralytics' defaults): ids, trails,
                tracks.csv;
and prints both fps and their ratio (goal: >= 0.9 on CPU), and what tracking costs (goal: at most 10 %
of the end-to-end fps). The two are interleaved `--repeats` times and
the best of each kept, since the machine may be shared. "in-run ratio" compares the end-to-end fps with
the fps that the model's own stage times (ultralytics' speed_ms) in that same run allow: the share of
the run's wall-clock the model was busy, which machine noise cannot skew between two measurements.
Models are built from ultralytics' YAML configs with a fixed seed (random weights: speed is real,
detections are not); no weights are downloaded.

    python bench/video.py [--imgsz 320] [--long-frames 120] [--repeats 2] [--device cpu]
    python bench/video.py --models yolo11n.yaml --conf 1e-5 --tracker bench/random-weights-tracker.yaml
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from detect_cli.backends import Plan, load_detector  # noqa: E402
from detect_cli.jobs import VideoJob, run_video  # noqa: E402
from detect_cli.models import PredictOptions, resolve, select_device  # noqa: E402
from detect_cli.tracking import TrackerConfig, tracker_config  # noqa: E402
from detect_cli.video import pick_codec, quiet_opencv  # noqa: E402

cv2 = quiet_opencv()  # before FFmpeg is first used, as the CLI does

STREET = ROOT / "samples" / "street.mp4"


def decode_all(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def make_long_clip(path: Path, n: int) -> Path:
    """street.mp4 played forwards and backwards until it has n frames (same size and fps)."""
    frames, fps = decode_all(STREET)
    loop = frames + frames[-2:0:-1]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        writer.write(loop[i % len(loop)])
    writer.release()
    return path


def model_only_fps(detector, frames: list[np.ndarray]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for frame in frames:
        detector.predict([frame])
    return len(frames) / (time.perf_counter() - start)


def end_to_end_fps(  # type: ignore[no-untyped-def]
    detector, clip: Path, out: Path, tracker: TrackerConfig | None = None
) -> tuple[float, float, float]:
    """(end-to-end fps, the fps the model's own per-frame times in that run allow, boxes per frame)."""
    job = VideoJob((str(clip),), detector.ref, detector.options, out=out, exist_ok=True, tracker=tracker)
    start = time.perf_counter()
    report, _ = run_video(job, detector=detector)
    seconds = time.perf_counter() - start
    assert report.summary.failed == 0 and not report.interrupted and report.summary.mean_ms
    s = report.summary
    return s.processed / seconds, 1000 / s.mean_ms, s.detections / s.processed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--long-frames", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="rtdetr-l.yaml,yolo11n.yaml")
    # Random weights score low: a lower threshold gives the tracker boxes to follow (and draw).
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--tracker", default="bytetrack", help="bytetrack, botsort or a settings YAML")
    args = parser.parse_args()

    import torch

    device = select_device(args.device)
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        clips = [STREET, make_long_clip(Path(tmp, "street-long.mp4"), args.long_frames)]
        decoded = {clip: decode_all(clip)[0] for clip in clips}
        print(
            f"settings: imgsz {args.imgsz}, device {device}, torch threads {torch.get_num_threads()}, "
            f"cpus {os.cpu_count()}, best of {args.repeats}, codec {pick_codec()}; models built from YAML "
            f"(random weights, seed 0), conf {args.conf}"
        )
        for clip in clips:
            frames = decoded[clip]
            print(f"clip {clip.name}: {len(frames)} frames, {frames[0].shape[1]}x{frames[0].shape[0]}")
        print(
            f"{'model':<10} {'clip':<16} {'frames':>6} {'model fps':>10} {'end-to-end fps':>15} {'ratio':>6}"
            f" {'in-run ratio':>13} {'tracked fps':>12} {'track cost':>11} {'boxes/frame':>12}"
        )
        tracker = tracker_config(args.tracker)
        for name in args.models.split(","):
            family = "rtdetr" if "rtdetr" in name else "yolo"
            options = PredictOptions(conf=args.conf, imgsz=args.imgsz, device=device)
            detector = load_detector(resolve(name, family), options, Plan("torch", "cpu"))
            for _ in range(3):  # ultralytics builds its predictor on the first call; keep that out
                detector.predict([decoded[STREET][0]])
            for clip in clips:
                model, e2e, in_run, tracked, tracked_in_run, boxes = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
                for r in range(args.repeats):
                    model = max(model, model_only_fps(detector, decoded[clip]))
                    fps, stage_fps, _ = end_to_end_fps(
                        detector, clip, Path(tmp, f"out-{name}-{clip.stem}-{r}")
                    )
                    if fps > e2e:
                        e2e, in_run = fps, fps / stage_fps
                    out = Path(tmp, f"track-{name}-{clip.stem}-{r}")
                    fps, stage_fps, boxes = end_to_end_fps(detector, clip, out, tracker)
                    if fps > tracked:
                        tracked, tracked_in_run = fps, fps / stage_fps
                # What tracking costs, measured as the in-run ratios (each run against its own model
                # times), which a busy machine skews far less than two separate fps.
                cost = 1 - tracked_in_run / in_run
                print(
                    f"{detector.name:<10} {clip.name:<16} {len(decoded[clip]):>6} {model:>10.2f} "
                    f"{e2e:>15.2f} {e2e / model:>6.2f} {in_run:>13.2f} {tracked:>12.2f} {cost:>11.1%} "
                    f"{boxes:>12.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
