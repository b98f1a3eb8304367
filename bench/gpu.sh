#!/usr/bin/env bash
# On a machine with a CUDA GPU, with detect and its dependencies installed (installs nothing):
#   1. the `gpu` tests (pytest -m gpu);
#   2. fp16 against fp32: `detect compare --backends torch,torch:fp16` on the same pictures, whose
#      fidelity lines give fp16's box agreement, mean IoU and score drift against fp32 (unsafe below
#      90 % agreement or a mean IoU of 0.85: exit 1);
#   3. a race on one folder: `detect image DIR --device cuda:0 --half` against
#      `yolo predict model=... source=DIR device=0 half=True`, whole processes, interleaved, ROUNDS
#      times; each round's images/s and the ratio (above 1: detect is faster).
#
#   bench/gpu.sh                      # MODEL=rtdetr-l IMGSZ=640 N=64 ROUNDS=3 DEVICE=cuda:0
#   MODEL=path/to/best.pt bench/gpu.sh
#   DEVICE=cpu IMGSZ=64 N=4 ROUNDS=1 bench/gpu.sh   # the script's own plumbing, on a CPU (no --half)
#
# Official weights are used when in the cache (or downloadable); without them, MODEL's YAML config is
# built with seed 0 (random weights: speeds are real, boxes are not). Temporary files go under one
# folder, removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
BIN=$(dirname "$PY")
YOLO=${YOLO:-$BIN/yolo}
MODEL=${MODEL:-rtdetr-l}
IMGSZ=${IMGSZ:-640}
N=${N:-64}
ROUNDS=${ROUNDS:-3}
DEVICE=${DEVICE:-cuda:0}
export YOLO_OFFLINE=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DEVICE" != cpu ]; then
  if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: no CUDA device here (torch.cuda.is_available() is False); nothing run" >&2
    exit 2
  fi
  HALF=(--half)
  YOLO_DEVICE=${DEVICE#cuda:}
  YOLO_HALF=True
else
  HALF=()
  YOLO_DEVICE=cpu
  YOLO_HALF=False
fi

WORK=$(mktemp -d -t detect-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export DETECT_CACHE_DIR=${DETECT_CACHE_DIR:-$HOME/.cache/detect-cli}

echo "# $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")'), model $MODEL, imgsz $IMGSZ, $N pictures, $ROUNDS rounds" >&2

# The pictures (bench/backends.py's: the samples and generated scenes), and a .pt that both tools load.
WEIGHTS=$("$PY" - "$MODEL" "$WORK" "$N" <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, "bench")
from backends import make_images, seeded_pt

from detect_cli.models import fetch_weights, resolve

model, work, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
make_images(work / "images", n)
ref = resolve(model, "rtdetr" if "detr" in model else "yolo")
try:
    print(fetch_weights(ref) if ref.official else ref.location)
except Exception as e:  # offline: the same network from its config, seed 0
    print(f"no weights for {model} ({e}); building {ref.name}.yaml with seed 0", file=sys.stderr)
    print(seeded_pt(ref.name, work)[0])
EOF
)
IMAGES=$WORK/images
FAILED=0

if [ "$DEVICE" != cpu ]; then
  echo "## 1. gpu tests" >&2
  (cd "$ROOT" && "$PY" -m pytest -q -m gpu -n 0 tests/) || FAILED=1
fi

echo "## 2. fp16 against fp32 (detect compare --backends)" >&2
VARIANTS=torch
[ "$DEVICE" != cpu ] && VARIANTS=torch,torch:fp16
[ "$DEVICE" = cpu ] && VARIANTS=torch,onnx
"$PY" -m detect_cli compare "$IMAGES" --models "$WEIGHTS" --backends "$VARIANTS" --device "$DEVICE" \
  --imgsz "$IMGSZ" --conf "${CONF:-0.25}" --no-memory --no-save -o "$WORK/fidelity" --quiet
"$PY" - "$WORK/fidelity/report.json" <<'EOF' || FAILED=1
import json, sys

from detect_cli.compare.fidelity import fidelity_lines
from detect_cli.compare.results import Fidelity, VariantFidelity

f = json.load(open(sys.argv[1]))["fidelity"]
fidelity = Fidelity(f["reference"], f["min_agreement"], f["min_mean_iou"],
                    tuple(VariantFidelity(**v) for v in f["variants"]))
print("\n".join(fidelity_lines(fidelity)))
sys.exit(1 if any(v.safe is False for v in fidelity.variants) else 0)
EOF

echo "## 3. detect image --half vs yolo predict half=True, whole processes" >&2
echo "| round | detect img/s | yolo predict img/s | ratio |"
echo "|---:|---:|---:|---:|"
RATIOS=()
for r in $(seq 1 "$ROUNDS"); do
  start=$("$PY" -c 'import time; print(time.perf_counter())')
  "$PY" -m detect_cli image "$IMAGES" -m "$WEIGHTS" --backend torch --device "$DEVICE" "${HALF[@]}" \
    --imgsz "$IMGSZ" -o "$WORK/detect-$r" --quiet
  mid=$("$PY" -c 'import time; print(time.perf_counter())')
  "$YOLO" predict model="$WEIGHTS" source="$IMAGES" device="$YOLO_DEVICE" half="$YOLO_HALF" imgsz="$IMGSZ" \
    project="$WORK" name="yolo-$r" save=True verbose=False >/dev/null 2>&1
  end=$("$PY" -c 'import time; print(time.perf_counter())')
  row=$("$PY" -c "n=$N; a=$mid-$start; b=$end-$mid; print(f'| $r | {n/a:.2f} | {n/b:.2f} | {b/a:.2f} |')")
  echo "$row"
  RATIOS+=("$(echo "$row" | awk -F'|' '{print $5}')")
done
"$PY" -c "import statistics, sys; r=[float(x) for x in sys.argv[1:]]; print(f'median ratio (yolo time / detect time): {statistics.median(r):.2f}')" "${RATIOS[@]}"
exit $FAILED
