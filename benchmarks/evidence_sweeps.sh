#!/bin/bash
# Evidence sweeps of issue 10 (item 7): the pretrained start, 3 seeds, the three
# baselines users know (random, srs, ultralytics_fraction), four detreduce methods and the
# distribution-learning methods of issue 14 (vq, flow, dream).
# One torch thread per sweep, so two sweeps share a 2-core machine (two single-thread
# runs train ~2x what one 2-thread run does). Rerun the same line to resume.
#   benchmarks/evidence_sweeps.sh bccd        # 8 epochs at 192 px (full mAP50-95 ~0.42)
#   benchmarks/evidence_sweeps.sh aquarium    # 10 epochs at 256 px (192 px: full 0.078)
#   benchmarks/evidence_sweeps.sh bccd-policies  # infobatch, crest, kcenter+infobatch, el2n
set -e
cd "$(dirname "$0")/.."
DS=$1
METHODS=random,srs,ultralytics_fraction,kcenter,clc,facility_location,prd,vq,flow,dream
FRACTIONS=0.25,0.5
OUT=results/$DS-pretrained
case $DS in
  bccd) PROTO="--epochs 8 --imgsz 192" ;;
  aquarium) PROTO="--epochs 10 --imgsz 256" ;;
  bccd-policies)  # issue 11: training-time methods, same protocol as bccd (same run ids)
    DS=bccd; PROTO="--epochs 8 --imgsz 192"; OUT=results/bccd-policies
    METHODS=infobatch,crest,kcenter+infobatch,el2n; FRACTIONS=0.5 ;;
  *) echo "usage: $0 bccd|aquarium|bccd-policies" >&2; exit 2 ;;
esac
start=$(date +%s)
detreduce sweep ../shared/datasets/$DS --methods $METHODS --fractions $FRACTIONS \
  --seeds 0,1,2 --model yolo-mobilenetv2 $PROTO --batch 8 \
  --val-every 2 --threads 1 --workers 0 --device cpu \
  --train-arg nbs=8 --train-arg warmup_epochs=1 --out $OUT
echo "wall $(( $(date +%s) - start )) s"
