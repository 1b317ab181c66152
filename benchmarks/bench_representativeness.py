"""ε-representativeness and class-share shift of every method, and which balance mode wins.

For each dataset (train split) and embedding level (image / box crops, mobilenet_v2),
every registered method plus the ``ultralytics_fraction`` baseline keeps ``--fraction``
of the images under each ``--balance`` mode, for each seed. Printed, in one run:

1. one table, at the balance mode given by ``--table-balance`` (default: the cfg default):
   per dataset × level × method, ε on image embeddings (an image counts for each class it
   holds), ε on box crops (a crop is kept when its image is), both Chebyshev as in the
   seed paper, each also relative to SRS; the total-variation distance between the full
   and kept per-class box shares (TV share); classes lost; selection seconds;
2. the balance comparison: per mode, means over every (dataset, level, method) of the
   same figures, and how often each mode gives the lowest TV share / ε_box.

Example (about 15 min on 2 CPU cores, embeddings cached after the first run):
    python benchmarks/bench_representativeness.py --datasets bccd aquarium --seeds 0 1 2
The strata schemes themselves, with the random reducer only (seconds, no embeddings):
    python benchmarks/bench_representativeness.py --strata-study 50 --datasets bccd aquarium chess
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from detreduce.balance import BALANCE_MODES
from detreduce.config import default
from detreduce.data.load import load_dataset
from detreduce.features import embed_dataset
from detreduce.methods import get_method, list_methods
from detreduce.metrics import selection_figures
from detreduce.selection import select_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _eps(fig: dict, key: str) -> float:
    v = fig.get(key, {}).get("overall")
    return math.inf if v == "inf" else (math.nan if v is None else float(v))


def _mean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan
    return math.inf if any(math.isinf(v) for v in vals) else float(np.mean(vals))


def _fmt(v: float, digits: int = 4) -> str:
    if math.isnan(v):
        return "-"
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def load_embedded(name: str, backbone: str, device: str):
    ds = load_dataset(SHARED / name).split("train")
    emb = embed_dataset(ds, backbone, "both", device=device, progress=False)
    box = (emb.box_image, emb.box_class, emb.box)
    return ds, emb.image, box


def run(args) -> list[dict]:
    # Every selection method of the catalog (training policies keep every image: no ε).
    methods = args.methods or [s.name for s in list_methods() if s.kind != "training"]
    rows = []
    for name in args.datasets:
        t0 = time.perf_counter()
        ds, X, box = load_embedded(name, args.backbone, args.device)
        print(
            f"# {name}: {ds.num_images} train images, {len(box[0])} crops, d={X.shape[1]} "
            f"(embedded/loaded in {time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        for level in args.levels:
            for method in methods:
                spec = get_method(method)
                # Methods that never balance (uniform random, ultralytics_fraction) run once,
                # under "none"; a deterministic one (ultralytics_fraction) needs one seed.
                modes = args.modes if spec.balanced else ["none"]
                seeds = [0] if spec.kind == "dataset" else args.seeds
                for mode in modes:
                    for seed in seeds:
                        row = {"dataset": name, "level": level, "method": method, "balance": mode}
                        row["seed"] = seed
                        try:
                            t = time.perf_counter()
                            sel = select_images(
                                ds,
                                method,
                                args.fraction,
                                seed=seed,
                                balance=mode,
                                features=X,
                                box_features=box,
                                level=level,
                                with_figures=False,
                            )
                            row["seconds"] = time.perf_counter() - t
                            fig = selection_figures(ds, sel.indices, X, box_features=box)
                        except Exception as exc:  # noqa: BLE001  (a table row, not a crash)
                            row["error"] = f"{type(exc).__name__}: {exc}"[:120]
                            print(
                                f"  {name}/{level}/{method}/{mode}: {row['error']}", file=sys.stderr
                            )
                            rows.append(row)
                            continue
                        row["eps_img"] = _eps(fig, "epsilon")
                        row["eps_box"] = _eps(fig, "epsilon_box")
                        row["tv_share"] = fig["box_share"]["tv"]
                        row["tv_count"] = fig["box_count_hist"]["tv"]
                        row["tv_size"] = fig["box_size_hist"]["tv"]
                        row["missing"] = len(fig["missing_classes"])
                        rows.append(row)
                print(f"  {name}/{level}/{method} done", file=sys.stderr, flush=True)
    return rows


def aggregate(rows: list[dict]) -> dict[tuple, dict]:
    """Mean over seeds per (dataset, level, method, balance)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["level"], r["method"], r["balance"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            out[key] = {"error": rs[0]["error"]}
            continue
        out[key] = {
            k: _mean([r[k] for r in ok])
            for k in ("eps_img", "eps_box", "tv_share", "tv_count", "tv_size", "seconds", "missing")
        }
    return out


def method_table(agg: dict, balance: str, datasets, levels) -> str:
    head = "| dataset | level | method | ε img | ε img / SRS | ε box | ε box / SRS | TV share | TV count | lost classes | s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for ds in datasets:
        for level in levels:
            srs = agg.get((ds, level, "srs", balance), {})
            keys = sorted(k for k in agg if k[0] == ds and k[1] == level)
            for key in keys:
                # Methods that never balance (uniform random, ultralytics_fraction) only
                # have a "none" row: show it, labelled.
                never = (ds, level, key[2], balance) not in agg
                if key[3] != balance and not (never and key[3] == "none"):
                    continue
                a = agg[key]
                label = key[2] + (" (no balance)" if key[3] != balance else "")
                if "error" in a:
                    lines.append(f"| {ds} | {level} | {label} | error: {a['error']} |" + " |" * 8)
                    continue
                ri = a["eps_img"] / srs["eps_img"] if srs.get("eps_img") else math.nan
                rb = a["eps_box"] / srs["eps_box"] if srs.get("eps_box") else math.nan
                lines.append(
                    f"| {ds} | {level} | {label} | {_fmt(a['eps_img'])} | {_fmt(ri, 2)} | "
                    f"{_fmt(a['eps_box'])} | {_fmt(rb, 2)} | {_fmt(a['tv_share'])} | "
                    f"{_fmt(a['tv_count'])} | {_fmt(a['missing'], 1)} | {_fmt(a['seconds'], 2)} |"
                )
    return "\n".join(lines)


def _finite_mean(vals: list[dict], key: str) -> float:
    return _mean([v[key] for v in vals if not math.isinf(v[key])])


def balance_table(agg: dict, modes) -> str:
    """Per mode: means over (dataset, level, method) cells present for every mode."""
    cells = {(k[0], k[1], k[2]) for k in agg if k[2] != "ultralytics_fraction"}
    cells = sorted(
        c for c in cells if all("error" not in agg.get((*c, m), {"error": 1}) for m in modes)
    )
    head = "| balance | mean TV share | mean TV count | mean ε img | mean ε box | lost classes (sum) | best TV share | best ε box |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    best_tv = {m: 0 for m in modes}
    best_eb = {m: 0 for m in modes}
    for c in cells:
        tv = {m: agg[(*c, m)]["tv_share"] for m in modes}
        eb = {m: agg[(*c, m)]["eps_box"] for m in modes}
        for m in modes:  # ties credit every mode that reaches the best value
            best_tv[m] += tv[m] <= min(tv.values()) + 1e-12
            best_eb[m] += eb[m] <= min(eb.values()) + 1e-12
    for m in modes:
        vals = [agg[(*c, m)] for c in cells]
        n_inf_i = sum(math.isinf(v["eps_img"]) for v in vals)
        n_inf_b = sum(math.isinf(v["eps_box"]) for v in vals)
        lines.append(
            f"| {m} | {_fmt(_mean([v['tv_share'] for v in vals]))} | "
            f"{_fmt(_mean([v['tv_count'] for v in vals]))} | "
            f"{_fmt(_finite_mean(vals, 'eps_img'))} (+{n_inf_i} inf) | {_fmt(_finite_mean(vals, 'eps_box'))} (+{n_inf_b} inf) | "
            f"{sum(v['missing'] for v in vals):.1f} | {best_tv[m]}/{len(cells)} | {best_eb[m]}/{len(cells)} |"
        )
    return "\n".join(lines)


STUDY_SCHEMES = [
    ["rarest_class"],
    ["dominant_class"],
    ["class_set"],
    ["category"],
    ["rarest_class", "box_count"],
    ["rarest_class", "box_size"],
    ["rarest_class", "box_count", "box_size"],
    ["class_set", "box_count"],
]


def strata_study(datasets, fraction: float, n_seeds: int) -> str:
    """Which strata keep the label distribution best, with the seeded random reducer
    (so the strata alone make the difference): mean TV of class box shares, box counts
    and box sizes over seeds, and classes lost, per dataset and scheme."""
    from detreduce.balance import balanced_select
    from detreduce.reducers import get_reducer

    head = (
        "| dataset | strata | strata count | TV share | TV count | TV size | lost classes (sum) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in datasets:
        ds = load_dataset(SHARED / name).split("train")
        for schemes in [None, *STUDY_SCHEMES]:
            tv = {"box_share": [], "box_count_hist": [], "box_size_hist": []}
            lost, n_strata = 0, 1
            for seed in range(n_seeds):
                res = balanced_select(
                    ds,
                    get_reducer("random"),
                    fraction,
                    mode="none" if schemes is None else "classes",
                    strata=schemes,
                    seed=seed,
                )
                fig = selection_figures(ds, res.indices)
                for key in tv:
                    tv[key].append(fig[key]["tv"])
                lost += len(fig["missing_classes"])
                n_strata = len(set(res.strata))
            label = "none" if schemes is None else "+".join(schemes)
            lines.append(
                f"| {name} | {label} | {n_strata} | {np.mean(tv['box_share']):.4f} | "
                f"{np.mean(tv['box_count_hist']):.4f} | {np.mean(tv['box_size_hist']):.4f} | {lost} |"
            )
    return "\n".join(lines)


def _brute_linf_epsilon(X: np.ndarray, labels: np.ndarray, kept: np.ndarray) -> float:
    import faiss

    mask = np.zeros(len(X), dtype=bool)
    mask[kept] = True
    eps = 0.0
    for c in np.unique(labels):
        index = faiss.IndexFlat(X.shape[1], faiss.METRIC_Linf)
        index.add(np.ascontiguousarray(X[(labels == c) & mask]))
        dist, _ = index.search(np.ascontiguousarray(X[(labels == c) & ~mask]), 1)
        eps = max(eps, float(dist.max()))
    return eps


def epsilon_cost(sizes: list[int], fraction: float, d: int = 1280) -> str:
    """Seconds and peak RSS of ε per class on synthetic clustered embeddings."""
    import resource

    from detreduce.metrics import epsilon_per_class

    head = (
        "| n | d | kept | metric | implementation | ε | seconds | peak RSS (GiB) "
        "| peak before ε (GiB) | data (GiB) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for n in sizes:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 5, n)
        centres = rng.normal(size=(50, d)).astype(np.float32)
        X = centres[rng.integers(0, 50, n)]
        for lo in range(0, n, 4096):  # float32 noise in chunks: the data is the only big array
            X[lo : lo + 4096] += rng.standard_normal((min(4096, n - lo), d), dtype=np.float32) / 2
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        kept = rng.choice(n, round(fraction * n), replace=False)
        for metric in ("chebyshev", "euclidean"):
            t = time.perf_counter()
            eps = float(np.nanmax(epsilon_per_class(X, labels, kept, metric)))
            sec = time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            lines.append(
                f"| {n} | {d} | {len(kept)} | {metric} | ours (pruned) | {eps:.4f} | {sec:.1f} | "
                f"{peak:.2f} | {base:.2f} | {X.nbytes / 2**30:.2f} |"
            )
        if n <= 20000:  # the plain exact alternative, for comparison
            t = time.perf_counter()
            eps = _brute_linf_epsilon(X, labels, kept)
            sec = time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            lines.append(
                f"| {n} | {d} | {len(kept)} | chebyshev | faiss METRIC_Linf brute force | {eps:.4f} | "
                f"{sec:.1f} | {peak:.2f} | {base:.2f} | {X.nbytes / 2**30:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", nargs="+", default=["bccd", "aquarium"])
    p.add_argument("--levels", nargs="+", default=["image", "box"], choices=["image", "box"])
    p.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    p.add_argument("--modes", nargs="+", default=list(BALANCE_MODES), choices=list(BALANCE_MODES))
    p.add_argument("--table-balance", default=None, help="balance of table 1 (default: cfg)")
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="write every row here")
    p.add_argument("--load", type=Path, default=None, help="print the tables of a --json file")
    p.add_argument(
        "--strata-study",
        type=int,
        default=0,
        metavar="SEEDS",
        help="instead: random under each strata scheme for SEEDS seeds (no embeddings)",
    )
    p.add_argument(
        "--epsilon-cost",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="instead: time ε on N synthetic rows of d=1280 (5 clustered classes, 25%% kept)",
    )
    args = p.parse_args()
    if args.epsilon_cost:
        print(epsilon_cost(args.epsilon_cost, args.fraction))
        return
    if args.strata_study:
        print(strata_study(args.datasets, args.fraction, args.strata_study))
        return
    rows = json.loads(args.load.read_text()) if args.load else run(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    agg = aggregate(rows)
    table_balance = args.table_balance or default("balance.mode")
    print(
        f"\n## ε (Chebyshev) and class box-share distance at fraction {args.fraction}, "
        f"balance={table_balance}, mean of seeds {args.seeds}, backbone {args.backbone}\n"
    )
    print(method_table(agg, table_balance, args.datasets, args.levels))
    print(f"\n## Balance modes: means over (dataset, level, method), fraction {args.fraction}\n")
    print(balance_table(agg, args.modes))


if __name__ == "__main__":
    main()
