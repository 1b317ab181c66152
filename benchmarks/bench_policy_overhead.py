"""What a loss-reading training policy (InfoBatch) costs on top of the training step.

Two parts, printed as two tables:

1. ``loss``: the per-image criterion (:mod:`detreduce.train.loss`) against Ultralytics'
   own ``v8DetectionLoss`` on the same predictions and targets: milliseconds per call,
   loss forward + backward to the predictions only (the network's own forward and
   backward are the same for both and excluded), interleaved over ``--reps`` calls.
   A real BCCD batch through ``yolo-mobilenetv2`` at ``--imgsz``, ``--batch`` images.
2. ``run``: one real training of BCCD under ``full`` and under ``infobatch`` (defaults),
   ``--epochs`` epochs: training seconds, images forwarded, and the policy's own
   bookkeeping seconds (draws, weights, observe: ``policy.seconds_policy`` in
   result.json) as a share of the training seconds.

    python benchmarks/bench_policy_overhead.py --part loss
    python benchmarks/bench_policy_overhead.py --part run --epochs 4

Results and commands: benchmarks/NOTES_train.md.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

logging.getLogger("detreduce").setLevel(logging.ERROR)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "bccd"


def _export(out: Path) -> Path:
    from detreduce.data.load import load_dataset
    from detreduce.selection import select_and_export

    return select_and_export(load_dataset(DATA), out, method="full", fraction=1.0).data_yaml


def bench_loss(imgsz: int, batch: int, reps: int) -> None:
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.utils.loss import v8DetectionLoss

    from detreduce.train.datayaml import resolve_data_yaml
    from detreduce.train.loss import PerImageDetectionLoss, weighted_total
    from detreduce.train.zoo import resolve_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data_yaml = _export(Path(tmp) / "full")
        data = resolve_data_yaml(data_yaml)
        model_ref = resolve_model("yolo-mobilenetv2")
        with model_ref.active():
            from ultralytics import YOLO

            model = YOLO(model_ref.source).model
        cfg = get_cfg(overrides={"imgsz": imgsz, "batch": batch})
        model.args = cfg
        info = {"names": dict(enumerate(data.names)), "nc": len(data.names), "channels": 3}
        ds = build_yolo_dataset(cfg, data.train[0], batch, info, mode="val")
        items = [ds[i] for i in range(batch)]
        b = ds.collate_fn(items)
        b["img"] = b["img"].float() / 255
        model.train()
        preds = model(b["img"])
        stock, mine = v8DetectionLoss(model), PerImageDetectionLoss(model)
        times = {"ultralytics v8DetectionLoss": [], "detreduce PerImageDetectionLoss": []}
        weights = torch.ones(batch)
        for _ in range(reps):
            for name, fn in (
                ("ultralytics v8DetectionLoss", lambda p: stock(p, b)[0].sum()),
                (
                    "detreduce PerImageDetectionLoss",
                    lambda p: weighted_total(mine.per_image_loss(p, b).per_image, weights).sum(),
                ),
            ):
                p = {k: (v.detach().requires_grad_(True) if k in ("boxes", "scores") else v)
                     for k, v in preds.items()} if isinstance(preds, dict) else preds  # fmt: skip
                t0 = time.perf_counter()
                fn(p).backward()
                times[name].append(time.perf_counter() - t0)
    base = sorted(times["ultralytics v8DetectionLoss"])[reps // 2]
    print(f"\nloss only, batch {batch}, imgsz {imgsz}, median of {reps} (forward + backward)")
    print("| criterion | ms per batch | ratio |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        med = sorted(ts)[reps // 2]
        print(f"| {name} | {1000 * med:.2f} | {med / base:.2f} |")


def bench_run(epochs: int, imgsz: int) -> None:
    from detreduce.train import train_yolo
    from detreduce.train.policy import get_policy

    with tempfile.TemporaryDirectory() as tmp:
        data_yaml = _export(Path(tmp) / "full")
        rows = []
        for name in ("full", "infobatch"):
            r = train_yolo(
                data_yaml, out_dir=Path(tmp) / name, policy=get_policy(name),
                model="yolo-mobilenetv2", epochs=epochs, imgsz=imgsz, batch=8, device="cpu",
                seed=0, threads=1, workers=0, train_args={"nbs": 8, "warmup_epochs": 1},
            )  # fmt: skip
            rows.append((name, r))
    print(f"\nBCCD, yolo-mobilenetv2, {epochs} epochs, imgsz {imgsz}, batch 8, 1 thread")
    print(
        "| policy | images forwarded | per epoch | train s | policy s | policy share | mAP50-95 |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, r in rows:
        p = r.policy
        share = p["seconds_policy"] / r.seconds_training
        print(
            f"| {name} | {r.images_seen} | {p['forwarded_per_epoch']} | {r.seconds_training:.1f} "
            f"| {p['seconds_policy']:.3f} | {100 * share:.2f} % | {r.map50_95:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("loss", "run", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--imgsz", type=int, default=192)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    if args.part in ("loss", "both"):
        bench_loss(args.imgsz, args.batch, args.reps)
    if args.part in ("run", "both"):
        bench_run(args.epochs, args.imgsz)


if __name__ == "__main__":
    main()
