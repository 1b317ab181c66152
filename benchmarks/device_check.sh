#!/usr/bin/env bash
# The GPU must-shows of issues 10 and 11, as one prepared script for a lent device machine:
# embedding throughput on the GPU, then aquarium's evidence protocol (yolo-mobilenetv2,
# 10 epochs at 256 px, batch 8, nbs 8, val every 2 epochs) for full, random 50 % and
# infobatch (seed 0) with codecarbon metering the GPU through NVML.
#
# Here, once: benchmarks/device_prepare.sh (builds the git-ignored .devkit/). Then three
# `run` calls back to back (the machine stays warm ~30 s after each; /tmp/site, where the
# first two install, is lost if it goes back in between — the last one then says so):
#   run  command="bash benchmarks/device_check.sh install whl1"  carry=[".devkit/whl1"]  timeout_s=180
#   run  command="bash benchmarks/device_check.sh install whl2"  carry=[".devkit/whl2"]  timeout_s=180
#   run  command="bash benchmarks/device_check.sh run"  carry=[".devkit/whl3", ".devkit/aquarium-320"]  timeout_s=540
# What comes back under $OUT: gpu.txt, embed.txt, sweep.log, results.csv, report.md,
# summary.txt (one line per run: mAP50-95, seconds and kWh by device). Record the figures
# in benchmarks/NOTES_train.md next to the CPU store's (results/aquarium-pretrained).
set -uo pipefail
cd "$(dirname "$0")/.."
SITE=/tmp/site
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
install() {  # install DIR: the kit's wheels into $SITE (no index, no dependencies)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$1"/*.whl
}

case "${1:-}" in
  install)
    [ -d ".devkit/${2:-}" ] || { echo "device_check: carry .devkit/${2:-whl1} for 'install ${2:-whl1}'" >&2; exit 2; }
    install ".devkit/$2" && ls "$SITE" | tr '\n' ' ' && echo && echo "installed .devkit/$2 in $SITE"
    exit ;;
  run) ;;
  *) echo "usage: $0 install|run (see the header)" >&2; exit 2 ;;
esac

[ -d .devkit/whl3 ] && [ -d .devkit/aquarium-320 ] \
  || { echo "device_check: .devkit/whl3 or .devkit/aquarium-320 missing: carry them (run benchmarks/device_prepare.sh here first)" >&2; exit 2; }
install .devkit/whl3 || exit 1
export PYTHONPATH=$SITE:$PWD YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import polars, faiss, pycountry" 2>/dev/null \
  || { echo "device_check: polars or faiss is not in $SITE: the machine went back between calls; run the three calls again, back to back" >&2; exit 2; }

nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"

# 1. embedding throughput on the GPU (the seed paper's naive loop beside ours, same run)
timeout 150 python3 benchmarks/bench_embed.py speed --data .devkit/aquarium-320 --device cuda:0 \
  --limit 300 2>&1 | tee "$OUT/embed.txt"

# 2. the aquarium evidence protocol on the GPU: full, random 50 %, infobatch; seed 0
SWEEP=/tmp/aq-gpu
rm -rf "$SWEEP"
timeout 330 python3 -m detreduce sweep .devkit/aquarium-320 --methods random,infobatch \
  --fractions 0.5 --seeds 0 --model yolo-mobilenetv2 --epochs 10 --imgsz 256 --batch 8 \
  --val-every 2 --device 0 --workers 8 --train-arg nbs=8 --train-arg warmup_epochs=1 \
  --out "$SWEEP" 2>&1 | tee "$OUT/sweep.log"
cp "$SWEEP/results.csv" "$SWEEP/report.md" "$OUT/" 2>/dev/null
python3 - "$SWEEP/results.csv" <<'EOF' | tee "$OUT/summary.txt"
import sys

import pandas as pd

df = pd.read_csv(sys.argv[1])
cols = ["method", "fraction", "status", "map50_95", "seconds_training", "kwh_training",
        "kwh_gpu", "kwh_cpu", "energy_mode", "images_seen"]
print(df[[c for c in cols if c in df]].to_string(index=False))
EOF
