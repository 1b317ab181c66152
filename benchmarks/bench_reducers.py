"""Seconds and peak memory of every selection method, side by side.

Each (method, n, fraction) case runs in a fresh subprocess on n rows of d = 1280
float32 "embeddings" (clustered Gaussian by default: 50 centres, unit noise), so peak
memory is that case's own: the growth of the process's peak RSS (VmHWM, reset after
the data is made) over its RSS before ``select``. PHL and PRD are skipped above 10k
rows (their target is 10k); every other method's target is 60 s at 100k rows (flow,
which fits a density model: 120 s).

    python benchmarks/bench_reducers.py                       # the full table
    python benchmarks/bench_reducers.py --sizes 1000,10000 --methods mms,clc
    python benchmarks/bench_reducers.py --knn --sizes 10000   # faiss vs scikit-learn kNN

Results and the commands that produced them: benchmarks/NOTES_reducers.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

TARGET_S = 60.0
#: Methods with their own target at 100k rows (flow includes fitting its density model).
TARGETS = {"flow": 120.0}
SLOW = {"phl", "prd"}  # target: 60 s at 10k rows; skipped above
SLOW_MAX_N = 10_000
D = 1280


def make_data(n: int, d: int, kind: str, seed: int = 0) -> np.ndarray:
    """float32 rows: ``clustered`` (50 Gaussian centres, unit noise) or ``uniform``."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, d), dtype=np.float32)
    centres = rng.standard_normal((50, d), dtype=np.float32) * 3
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += centres[rng.integers(0, 50, n)]
    return X


def _status(key: str) -> float:
    """A VmXXX field of /proc/self/status in MiB (0 when unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _case(method: str, n: int, fraction: float, kind: str, out: mp.Queue) -> None:
    from detreduce.reducers import get_reducer

    X = make_data(n, D, kind)
    reducer = get_reducer(method)
    before = _status("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    res = reducer.select(X, fraction, seed=0)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - before if exact else float("nan")
    out.put({"seconds": seconds, "peak_mb": peak, "kept": int(len(res.indices))})


def run_case(method: str, n: int, fraction: float, kind: str, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(method, n, fraction, kind, q))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"status": f"timeout>{timeout:.0f}s"}
    if proc.exitcode != 0 or q.empty():
        return {"status": f"failed (exit {proc.exitcode})"}
    return {"status": "ok", **q.get()}


def _true_mean_dist(X: np.ndarray, idx: np.ndarray) -> float:
    """Mean full-dimension distance from each row to the neighbours in ``idx``."""
    from detreduce.reducers._linalg import paired_sq_dist

    rows = np.repeat(np.arange(len(X)), idx.shape[1])
    return float(np.sqrt(paired_sq_dist(X, X, idx.ravel(), rows)).mean())


def knn_comparison(sizes: list[int], kind: str) -> None:
    """faiss exact vs scikit-learn brute force, and the approximate path vs exact.

    Quality of a search: recall@10 against the exact neighbours, and the distance ratio
    (mean true distance to the neighbours found / mean distance to the exact ones).
    """
    from detreduce.reducers._neighbors import knn

    print("| n | search | seconds | recall@10 | distance ratio |")
    print("|---|---|---:|---:|---:|")
    for n in sizes:
        X = make_data(n, D, kind)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        _, exact = knn(X, 10, rng, backend="faiss", exact_work=float("inf"))
        t_faiss = time.perf_counter() - t0
        base = _true_mean_dist(X, exact)
        print(f"| {n} | faiss IndexFlatL2 (exact) | {t_faiss:.2f} | 1.000 | 1.000 |", flush=True)
        t0 = time.perf_counter()
        _, sk = knn(X, 10, rng, backend="sklearn")
        t_sk = time.perf_counter() - t0
        rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(sk, exact, strict=True)])
        ratio = _true_mean_dist(X, sk) / base
        print(
            f"| {n} | scikit-learn brute (exact) | {t_sk:.2f} | {rec:.3f} | {ratio:.3f} |",
            flush=True,
        )
        t0 = time.perf_counter()
        _, approx = knn(X, 10, rng, backend="faiss", exact_work=0.0)
        t_ivf = time.perf_counter() - t0
        rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact, strict=True)])
        ratio = _true_mean_dist(X, approx) / base
        print(f"| {n} | faiss PCA-64 + IVF (approx) | {t_ivf:.2f} | {rec:.3f} | {ratio:.3f} |")
        print(
            f"| {n} | speed-up: faiss vs sklearn {t_sk / t_faiss:.1f}x, "
            f"IVF vs exact {t_faiss / t_ivf:.1f}x | | | |",
            flush=True,
        )


def kmeans_comparison(sizes: list[int], kind: str, k: int = 100) -> None:
    """faiss k-means (what CLC and typicality use) vs scikit-learn's, same k-means++ init."""
    import faiss
    from sklearn.cluster import KMeans

    from detreduce.reducers._kmeans import d2_sampling

    print(f"| n | k-means, k={k}, same init | seconds | iterations | s/iteration |")
    print("|---|---|---:|---:|---:|")
    for n in sizes:
        X = make_data(n, D, kind)
        init = X[d2_sampling(X, k, np.random.default_rng(0))[0]]
        km = faiss.Kmeans(
            D, k, niter=20, seed=1, min_points_per_centroid=1, max_points_per_centroid=n
        )
        t0 = time.perf_counter()
        km.train(X, init_centroids=init)
        t_f = time.perf_counter() - t0
        t0 = time.perf_counter()
        sk = KMeans(k, init=init, n_init=1, max_iter=20, tol=0.0).fit(X)
        t_s = time.perf_counter() - t0
        print(f"| {n} | faiss Kmeans | {t_f:.2f} | 20 | {t_f / 20:.3f} |")
        it = sk.n_iter_
        print(f"| {n} | scikit-learn KMeans | {t_s:.2f} | {it} | {t_s / it:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    from detreduce.reducers import list_reducers

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated row counts")
    ap.add_argument("--fractions", default="0.1,0.5")
    ap.add_argument("--methods", default="all", help="comma-separated method names, or all")
    ap.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    ap.add_argument(
        "--knn", action="store_true", help="only the faiss vs scikit-learn kNN / k-means timings"
    )
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.knn:
        knn_comparison(sizes, args.data)
        kmeans_comparison(sizes, args.data)
        return 0
    fractions = [float(f) for f in args.fractions.split(",")]
    names = [s.name for s in list_reducers()] if args.methods == "all" else args.methods.split(",")
    print(f"# d={D}, data={args.data}, cores={os.cpu_count()}, python {sys.version.split()[0]}")
    print("| method | n | fraction | seconds | peak MB | target |")
    print("|---|---:|---:|---:|---:|---|")
    rows = []
    for n in sizes:
        for name in names:
            for f in fractions:
                if name in SLOW and n > SLOW_MAX_N:
                    row = {"status": "skipped"}
                else:
                    row = run_case(name, n, f, args.data, args.timeout)
                row.update(method=name, n=n, fraction=f)
                rows.append(row)
                if row["status"] == "ok":
                    limit_n = SLOW_MAX_N if name in SLOW else 100_000
                    verdict = ""
                    if n == limit_n:
                        target = TARGETS.get(name, TARGET_S)
                        verdict = "ok" if row["seconds"] < target else f"OVER {target:.0f} s"
                    print(
                        f"| {name} | {n} | {f} | {row['seconds']:.2f} | "
                        f"{row['peak_mb']:.0f} | {verdict} |",
                        flush=True,
                    )
                else:
                    print(f"| {name} | {n} | {f} | {row['status']} | | |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
