#!/bin/bash
# Evidence sweeps of issue 10 (item 7): the pretrained start, 3 seeds, the three
# baselines users know (random, srs, ultralytics_fraction), four detreduce methods and the
# distribution-learning methods of issue 14 (vq, flow, dream).
# One torch thread per sweep, so two sweeps share a 2-core machine (two single-thread
# runs train ~2x what one 2-thread run does). Rerun the same line to resume.
#   benchmarks/evidence_sweeps.sh bccd        # 8 epochs at 192 px (full mAP50-95 ~0.42)
#   benchmarks/evidence_sweeps.sh aquarium    # 10 epochs at 256 px (192 px: full 0.078)
#   benchmarks/evidence_sweeps.sh bccd-policies  # infobatch, crest, kcenter+infobatch, el2n
#   SEEDS=0 benchmarks/evidence_sweeps.sh aquarium-policies  # the seeds whose full run is in
#   SEEDS=0 EXTRA="--backend ray --cpus-per-trial 1" benchmarks/evidence_sweeps.sh aquarium-converge
set -e
cd "$(dirname "$0")/.."
DS=$1
METHODS=random,srs,ultralytics_fraction,kcenter,clc,facility_location,prd,vq,flow,dream
FRACTIONS=0.25,0.5
OUT=results/$DS-pretrained
case $DS in
  bccd) PROTO="--epochs 8 --imgsz 192" ;;
  aquarium)  # issue 10's seven first (vq, flow, dream: add them to METHODS later, same ids)
    PROTO="--epochs 10 --imgsz 256"
    METHODS=random,srs,ultralytics_fraction,kcenter,clc,facility_location,prd ;;
  bccd-policies)  # issue 11: training-time methods, same protocol as bccd (same run ids)
    DS=bccd; PROTO="--epochs 8 --imgsz 192"; OUT=results/bccd-policies
    METHODS=infobatch,crest,kcenter+infobatch,el2n,infobatch@prune_ratio=0.75; FRACTIONS=0.5 ;;
  aquarium-policies)  # issue 11 on aquarium; full and random rows seeded from aquarium-pretrained
    DS=aquarium; PROTO="--epochs 10 --imgsz 256"; OUT=results/aquarium-policies
    METHODS=infobatch,crest,kcenter+infobatch,el2n; FRACTIONS=0.5 ;;
  aquarium-converge)  # does the under-training of aquarium's 10 epochs go away? (SEEDS=0 first)
    DS=aquarium; OUT=results/aquarium-converge; METHODS=random,srs; FRACTIONS=0.5
    PROTO="--budget converge --epochs 10 --max-epochs 30 --patience 4 --imgsz 256" ;;
  *) echo "usage: $0 bccd|aquarium|bccd-policies|aquarium-policies|aquarium-converge" >&2; exit 2 ;;
esac
# EXTRA="--backend ray --cpus-per-trial 1" runs two single-thread trials at once on 2 cores.
start=$(date +%s)
detreduce sweep ../shared/datasets/$DS --methods $METHODS --fractions $FRACTIONS \
  --seeds ${SEEDS:-0,1,2} --model yolo-mobilenetv2 $PROTO --batch 8 \
  --val-every 2 --threads 1 --workers 0 --device cpu \
  --train-arg nbs=8 --train-arg warmup_epochs=1 --out $OUT $EXTRA
echo "wall $(( $(date +%s) - start )) s"
