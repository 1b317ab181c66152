"""Training seconds on CPU for torch thread / loader-worker settings, side by side.

BCCD (VOC, exported once as a full YOLO split with ``reduce_dataset(method="full")``),
``yolov8n.yaml`` from scratch, 3 epochs at 256 px, batch 8, seed 0, on the CPU. The
settings, run one after another in this process (in rounds, so a change of machine load
hits every setting alike):

- ``ultralytics``: what Ultralytics does on its own: ``NUM_THREADS`` torch threads
  (``min(8, cores - 1)``: 1 on 2 cores) and 0 loader workers (it zeroes ``workers`` for
  CPU training, ``engine/trainer.py:178-179``);
- ``t{cores}-w0`` and ``t{cores}-w2``: every core to torch, with 0 or 2 loader workers;
- ``t{cores-2}-w2`` (at least 1 thread): the cores the 2 workers leave, the rule embedding
  applies to explicit workers (training does not: see the table);
- ``auto``: detreduce's rule (``threads: auto``, ``workers: auto``;
  :mod:`detreduce.train.threads`).

A 1-epoch training first warms the process up (imports, file cache; not timed). Prints
one row per setting: threads and workers that ran (from ``result.json``), the training
seconds of each round and their mean, the ratio of the mean to Ultralytics' default,
and mAP50 (a real training: equal for equal threads and workers).
Run nothing else heavy meanwhile; the 1-minute load average before and after is printed.

    python benchmarks/bench_train_threads.py                 # 1 round, ~3 min on 2 cores
    python benchmarks/bench_train_threads.py --rounds 2

Results and the commands that produced them: benchmarks/NOTES_train.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
from pathlib import Path

logging.getLogger("detreduce").setLevel(logging.ERROR)

#: The real datasets beside the repository (override with --data).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def settings(cores: int) -> dict[str, dict[str, int | str]]:
    """The settings compared, by label: threads and workers as train_yolo takes them."""
    from ultralytics.utils import NUM_THREADS

    return {
        "ultralytics": {"threads": NUM_THREADS, "workers": 0},
        f"t{cores}-w0": {"threads": cores, "workers": 0},
        f"t{cores}-w2": {"threads": cores, "workers": 2},
        f"t{max(1, cores - 2)}-w2": {"threads": max(1, cores - 2), "workers": 2},
        "auto": {"threads": "auto", "workers": "auto"},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "bccd")
    ap.add_argument("--rounds", type=int, default=1, help="times every setting runs")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    args = ap.parse_args(argv)

    from detreduce.device import cpu_cores
    from detreduce.reduce import reduce_dataset
    from detreduce.train import train_yolo
    from detreduce.train.threads import plan_threads

    work = args.out or Path(tempfile.mkdtemp(prefix="bench_train_threads_"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    split = reduce_dataset(
        args.data, method="full", fraction=1.0, out=work / "full", overwrite=True
    )
    data_yaml = Path(split.data_yaml)
    cores = cpu_cores()
    cases = settings(cores)
    rows: dict[str, list] = {label: [] for label in cases}
    common = dict(model="yolov8n.yaml", imgsz=args.imgsz, batch=args.batch, device="cpu", seed=0)
    train_yolo(data_yaml, out_dir=work / "warmup", overwrite=True, epochs=1, **common)
    for r in range(args.rounds):
        for label, case in cases.items():
            plan = plan_threads(case["threads"], case["workers"], "cpu")
            result = train_yolo(
                data_yaml,
                out_dir=work / f"{label}-{r}",
                overwrite=True,
                epochs=args.epochs,
                **common,
                **case,
            )
            rows[label].append((result, plan.why))
            print(
                f"round {r} {label:>12}: threads {result.threads} workers {result.workers} "
                f"{result.seconds_training:6.1f} s train ({plan.why})",
                flush=True,
            )
    load_after = os.getloadavg()

    base = statistics.mean(res.seconds_training for res, _ in rows["ultralytics"])
    print()
    print(
        f"BCCD full train split, yolov8n.yaml, {args.epochs} epochs, imgsz {args.imgsz}, "
        f"batch {args.batch}, {cores} cores, {args.rounds} round(s)"
    )
    print(
        "| setting | threads | workers | train s (each round) | mean s | vs ultralytics | mAP50 |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, runs in rows.items():
        secs = [res.seconds_training for res, _ in runs]
        first = runs[0][0]
        each = ", ".join(f"{s:.1f}" for s in secs)
        maps = sorted({f"{res.map50:.4f}" for res, _ in runs})
        print(
            f"| {label} | {first.threads} | {first.workers} | {each} | "
            f"{statistics.mean(secs):.1f} | {statistics.mean(secs) / base:.2f} | "
            f"{', '.join(maps)} |"
        )
    fmt = ", ".join
    print(f"\nload average before: {fmt(f'{x:.2f}' for x in load_before)}")
    print(f"load average after:  {fmt(f'{x:.2f}' for x in load_after)}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
