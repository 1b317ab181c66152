"""kcenter, clc and facility_location at 100k, 300k and 1M rows of d = 256 (issue 13 item 4).

Each (method, n) case runs in a fresh subprocess, so its peak memory is its own: the
growth of the process's peak RSS (VmHWM, reset after the data is made) over its RSS
before ``select``. The reducers are called through the public path,
``get_reducer(name).select(X, fraction, seed=0)``, with their cfg defaults.

Data: synthetic stand-ins for PCA-reduced image embeddings, 256-D float32. PCA output
has two traits that matter to these methods, and the generator has both: rows form
clusters (images of similar scenes; here 1000 Gaussian centres, cluster sizes
Zipf-like), and the variance falls off along the coordinates (PCA sorts components by
explained variance; here coordinate j has scale (j + 1)^-0.5 for centres and noise
alike), so most of the geometry lies in the first few dozen dimensions, as in real
embeddings and unlike isotropic noise.

    python benchmarks/bench_million.py                          # 100k, 300k, 1M
    python benchmarks/bench_million.py --sizes 100000 --methods clc

Also printed per case: each method's own objective (``QUALITY``) and what ran approximately (partitions, approximate kNN), read from
the ``detreduce`` logger's debug records. Results: benchmarks/NOTES_reducers.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

# the same peak-RSS probes as the per-method benchmark (this folder is on sys.path when run)
from bench_reducers import _reset_peak, _status

D = 256
CENTRES = 1000
METHODS = ("kcenter", "clc", "facility_location")
#: A figure of each method's own objective, from its per-row scores (lower or higher is better).
QUALITY = {
    "kcenter": ("covering radius (cosine space), lower is better", np.max),
    "clc": ("k-means cost: mean squared distance to the centroid, lower is better", None),
    "facility_location": ("mean coverage F(S)/n, higher is better", np.mean),
}


def quality(method: str, scores: np.ndarray | None) -> float:
    """The method's objective read from its scores (see ``QUALITY``); NaN when unknown."""
    if scores is None or method not in QUALITY:
        return float("nan")
    s = np.asarray(scores, dtype=np.float64)
    fn = QUALITY[method][1]
    return float(np.mean(s**2)) if fn is None else float(fn(s))


def make_data(n: int, d: int = D, seed: int = 0) -> np.ndarray:
    """float32 rows: ``CENTRES`` clusters (Zipf-like sizes), per-coordinate scale (j+1)^-0.5."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(d, dtype=np.float32) + 1.0) ** -0.5
    centres = rng.standard_normal((CENTRES, d), dtype=np.float32) * (4.0 * scale)
    weights = 1.0 / np.arange(1, CENTRES + 1)
    labels = rng.choice(CENTRES, n, p=weights / weights.sum())
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= scale
    X += centres[labels]
    return X


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _case(method: str, n: int, fraction: float, out: mp.Queue) -> None:
    from detreduce.reducers import get_reducer

    X = make_data(n)
    reducer = get_reducer(method)
    log = logging.getLogger("detreduce")
    collect = _Collect()
    log.addHandler(collect)
    log.setLevel(logging.DEBUG)
    before = _status("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    res = reducer.select(X, fraction, seed=0)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - before if exact else float("nan")
    out.put(
        {
            "seconds": seconds,
            "peak_mb": peak,
            "data_mb": X.nbytes / 2**20,
            "kept": int(len(res.indices)),
            "quality": quality(method, res.scores),
            "notes": collect.messages,
        }
    )


def run_case(method: str, n: int, fraction: float, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(method, n, fraction, q))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"status": f"timeout>{timeout:.0f}s"}
    if proc.exitcode != 0 or q.empty():
        return {"status": f"failed (exit {proc.exitcode})"}
    return {"status": "ok", **q.get()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000,1000000", help="comma-separated row counts")
    ap.add_argument("--fraction", type=float, default=0.1, help="budget: share of the rows kept")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.methods.split(",")
    try:
        import faiss

        gpus = faiss.get_num_gpus()
    except ImportError:
        gpus = -1
    print(
        f"# d={D}, {CENTRES} clustered centres, fraction={args.fraction}, "
        f"cores={os.cpu_count()}, faiss GPUs={gpus}, python {sys.version.split()[0]}"
    )
    for name in names:
        if name in QUALITY:
            print(f"# quality of {name}: {QUALITY[name][0]}")
    print("| method | rows | fraction | seconds | peak RSS MB | quality | what ran approximately |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = []
    for n in sizes:
        for name in names:
            row = run_case(name, n, args.fraction, args.timeout)
            row.update(method=name, n=n, fraction=args.fraction)
            rows.append(row)
            if row["status"] == "ok":
                notes = "; ".join(row["notes"]) or "exact"
                print(
                    f"| {name} | {n} | {args.fraction} | {row['seconds']:.1f} | "
                    f"{row['peak_mb']:.0f} | {row['quality']:.4g} | {notes} |",
                    flush=True,
                )
            else:
                print(f"| {name} | {n} | {args.fraction} | {row['status']} | | | |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
