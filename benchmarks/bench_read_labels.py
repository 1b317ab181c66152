"""Benchmark: reading a generated 100k-image YOLO label tree with ``load_dataset``.

Generates (once, cached under --root) N unique tiny JPEGs with 1-5 boxes each, then
times ``load_dataset`` (header scan + label parse + duplicate check) cold and warm.

    python benchmarks/bench_read_labels.py --n 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import cv2
import numpy as np


def generate(root: Path, n: int, seed: int = 0) -> Path:
    data = root / "data.yaml"
    if data.exists():
        return data
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    n_val = n // 10
    for i in range(n):
        split = "val" if i < n_val else "train"
        img = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", img)
        (root / "images" / split / f"{i:07d}.jpg").write_bytes(buf.tobytes())
        k = int(rng.integers(1, 6))
        xy = rng.uniform(0.2, 0.8, (k, 2))
        wh = rng.uniform(0.05, 0.3, (k, 2))
        cls = rng.integers(0, 10, k)
        lines = [f"{c} {x:.5f} {y:.5f} {w:.5f} {h:.5f}" for c, (x, y), (w, h) in zip(cls, xy, wh)]
        (root / "labels" / split / f"{i:07d}.txt").write_text("\n".join(lines) + "\n")
    data.write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames: {[f'c{i}' for i in range(10)]}\n"
    )
    return data


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--root", type=Path, default=Path("/tmp/detreduce-bench-labels"))
    args = ap.parse_args()
    from detreduce.data import load_dataset

    root = args.root / str(args.n)
    t = time.perf_counter()
    data = generate(root, args.n)
    gen = time.perf_counter() - t
    rows = []
    for label in ("first read", "second read"):
        t = time.perf_counter()
        ds = load_dataset(data)
        rows.append((label, time.perf_counter() - t, ds.num_images, ds.num_boxes, len(ds.problems)))
    t = time.perf_counter()
    ds_nodup = load_dataset(data, check_duplicates=False)
    rows.append(
        ("no duplicate check", time.perf_counter() - t, ds_nodup.num_images, ds_nodup.num_boxes, 0)
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"generated {args.n} images in {gen:.1f} s (0 s if cached) on {os.cpu_count()} cores")
    print(f"{'run':<20}{'seconds':>9}{'images':>9}{'boxes':>9}{'problems':>10}{'img/s':>10}")
    for label, sec, ni, nb, npb in rows:
        print(f"{label:<20}{sec:>9.2f}{ni:>9}{nb:>9}{npb:>10}{ni / sec:>10.0f}")
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
