"""Wall time of one small sweep on a local Ray cluster with 1 vs 2 trials at a time.

The same grid (BCCD, ``ultralytics_fraction`` and ``srs`` at 50 %, seeds 0 and 1, and the
full-data control of each seed: 8 trials; ``yolov8n.yaml`` from scratch, 2 epochs at 128 px, batch 8,
one torch thread and no loader workers per trial) runs twice through
``--backend ray`` on a fresh local Ray head with every core of this machine:

- ``serial``: ``cpus_per_trial`` = cores, so Ray runs one trial at a time;
- ``parallel``: ``cpus_per_trial`` = 1, so Ray runs ``cores`` trials at once.

Each trial trains with one thread either way, so the ratio shows what running trials
side by side on a cluster gains, and the rows of both runs must be equal (the same
metrics: determinism on the CPU), which is checked and printed. Run nothing else heavy
meanwhile; the load average before and after is printed.

    python benchmarks/bench_ray_parallel.py          # ~5 min on 2 cores

Results and the command: benchmarks/NOTES_sweep.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

logging.getLogger("detreduce").setLevel(logging.ERROR)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

GRID = {"methods": ["ultralytics_fraction", "srs"], "fractions": [0.5], "seeds": [0, 1]}
TRAIN = {"model": "yolov8n.yaml", "epochs": 2, "imgsz": 128, "batch": 8, "device": "cpu",
         "workers": 0, "threads": 1}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "bccd")
    args = ap.parse_args()
    import ray

    from detreduce.sweep import read_results, run_sweep

    cores = os.cpu_count() or 1
    print(f"# {cores} cores, load before {os.getloadavg()[0]:.2f}")
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    rows, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, per_trial in (("serial", float(cores)), ("parallel", 1.0)):
            out = Path(tmp) / label
            sweep = {**GRID, "backend": "ray", "cpus_per_trial": per_trial}
            start = time.perf_counter()
            result = run_sweep(args.data, out, sweep=sweep, train=TRAIN, train_args={"nbs": 8})
            seconds[label] = time.perf_counter() - start
            assert result.failed == 0, f"{label}: {result.failed} failed runs"
            rows[label] = read_results(out).set_index("run_id").sort_index()
    ray.shutdown()
    cols = ["map50", "map50_95", "n_kept", "steps"]
    same = rows["serial"][cols].equals(rows["parallel"][cols])
    n = len(rows["serial"])
    print("| trials at once | trials | wall s | ratio to serial |")
    print("|---|---:|---:|---:|")
    print(f"| 1 (cpus_per_trial={cores}) | {n} | {seconds['serial']:.1f} | 1.00 |")
    ratio = seconds["parallel"] / seconds["serial"]
    print(f"| {cores} (cpus_per_trial=1) | {n} | {seconds['parallel']:.1f} | {ratio:.2f} |")
    print(f"# rows equal (map50, map50_95, n_kept, steps): {same}")
    print(f"# load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
