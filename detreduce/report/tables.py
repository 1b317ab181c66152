"""Summary tables of a sweep: one row per (method, fraction), figures relative to full data.

Pure functions over the results DataFrame (see :mod:`detreduce.sweep.store`), so the
numbers in the report can be checked by hand from ``results.csv``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detreduce.errors import ConfigError
from detreduce.methods import get_method
from detreduce.metrics import mean_interval, paired_verdict
from detreduce.sweep.grid import FULL, RANDOM
from detreduce.sweep.store import read_results
from detreduce.train.convergence import TTA_LEVELS, time_to_accuracy


def is_baseline(method: str) -> bool:
    """A baseline by the catalog (full data, uniform random, srs, Ultralytics fraction=)."""
    try:
        spec = get_method(method)
    except ConfigError:  # a method of an older store that the catalog no longer has
        return False
    return spec.name == FULL or bool(spec.baseline)


def load_sweep(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The latest row of every run and the sweep config (``sweep.json`` + ``embedding.json``)."""
    run_dir = Path(run_dir)
    df = read_results(run_dir)
    cfg_path = run_dir / "sweep.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    emb_path = run_dir / "embedding.json"
    if emb_path.exists():
        config["embedding"] = json.loads(emb_path.read_text())
    return df, config


def method_order(methods: list[str] | pd.Series) -> list[str]:
    """Baselines first (full, random, then the catalog's other baselines by name), then the
    other methods alphabetically."""
    names = list(dict.fromkeys(methods))
    first = [m for m in (FULL, RANDOM) if m in names]
    first += sorted(m for m in names if is_baseline(m) and m not in first)
    return first + sorted(m for m in names if m not in first)


def full_reference(df: pd.DataFrame) -> dict[str, float]:
    """Mean and std over seeds of the full-data baseline (NaN when it has no finished run)."""
    full = df[(df["method"] == FULL) & (df["status"] == "ok")]
    out = {}
    for col in ("map50_95", "map50", "kwh_total", "seconds", "images_seen"):
        vals = full[col].astype(float) if col in full else pd.Series(dtype=float)
        out[col] = float(vals.mean()) if len(vals) else float("nan")
        out[col + "_std"] = float(vals.std(ddof=0)) if len(vals) else float("nan")
    out["n"] = int(len(full))
    return out


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, fraction) over finished runs.

    Columns: ``n`` finished seeds, ``failed`` runs, ``map50_95`` / ``map50`` mean and
    ``map50_95_std`` (population std over seeds), ``map50_95_lo``/``_hi`` (95 % Student-t
    interval of the mean over seeds, :func:`detreduce.metrics.mean_interval`), ``map_rel`` = mean mAP50-95 / mean
    full-data mAP50-95, ``kwh`` mean total kWh per run, ``kwh_saved`` = 1 − kwh / full
    kWh, ``eps`` mean ε-representativeness, ``seconds`` mean wall seconds per run,
    ``passes_rel`` = mean images forwarded in training / the full run's (what a static
    reduction and a training policy such as InfoBatch both save, in one unit).
    """
    cols = [
        "method",
        "fraction",
        "n",
        "failed",
        "map50_95",
        "map50_95_std",
        "map50_95_lo",
        "map50_95_hi",
        "map50",
        "map_rel",
        "kwh",
        "kwh_std",
        "kwh_saved",
        "eps",
        "seconds",
        "passes_rel",
    ]
    if df.empty:
        return pd.DataFrame(columns=cols)
    ref = full_reference(df)
    rows = []
    for (method, fraction), grp in df.groupby(["method", "fraction"], sort=False):
        ok = grp[grp["status"] == "ok"]
        kwh = float(ok["kwh_total"].mean()) if len(ok) else float("nan")
        _, lo, hi = mean_interval(ok["map50_95"].astype(float).tolist())
        rows.append(
            {
                "method": method,
                "fraction": float(fraction),
                "n": int(len(ok)),
                "failed": int((grp["status"] != "ok").sum()),
                "map50_95": float(ok["map50_95"].mean()) if len(ok) else float("nan"),
                "map50_95_std": float(ok["map50_95"].std(ddof=0)) if len(ok) else float("nan"),
                "map50_95_lo": lo,
                "map50_95_hi": hi,
                "map50": float(ok["map50"].mean()) if len(ok) else float("nan"),
                "map_rel": _ratio(ok["map50_95"].mean() if len(ok) else np.nan, ref["map50_95"]),
                "kwh": kwh,
                "kwh_std": float(ok["kwh_total"].std(ddof=0)) if len(ok) else float("nan"),
                "kwh_saved": 1.0 - _ratio(kwh, ref["kwh_total"]),
                "eps": float(ok["eps"].mean()) if len(ok) and "eps" in ok else float("nan"),
                "seconds": float(ok["seconds"].mean()) if len(ok) else float("nan"),
                "passes_rel": _ratio(
                    ok["images_seen"].astype(float).mean()
                    if len(ok) and "images_seen" in ok
                    else np.nan,
                    ref["images_seen"],
                ),
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(method_order(out["method"]))}
    out["_o"] = out["method"].map(order)
    return out.sort_values(["_o", "fraction"]).drop(columns="_o").reset_index(drop=True)


def paired_to_random(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Each method's mAP50-95 minus uniform ``random``'s at the same fraction and seed.

    Pairing by seed removes what the seed does to both runs (shuffle order, init), so
    the interval of the mean difference is tighter than comparing two means. Columns:
    ``method``, ``fraction``, ``pairs`` (seeds where both finished), ``diff`` (mean
    difference), ``lo``/``hi`` (its Student-t interval at ``level``) and ``verdict``
    (:func:`detreduce.metrics.paired_verdict`: ``indistinguishable`` when the interval
    covers 0). Training-kind methods (full data) are not paired.
    """
    cols = ["method", "fraction", "pairs", "diff", "lo", "hi", "verdict"]
    ok = df[df["status"] == "ok"]
    base = ok[ok["method"] == RANDOM].set_index(["fraction", "seed"])["map50_95"]
    rows = []
    for (method, fraction), grp in ok.groupby(["method", "fraction"], sort=False):
        if method in (RANDOM, FULL):
            continue
        diffs = [
            float(m) - float(base[(fraction, seed)])
            for seed, m in zip(grp["seed"], grp["map50_95"], strict=True)
            if (fraction, seed) in base.index
        ]
        mean, lo, hi = mean_interval(diffs, level)
        verdict = paired_verdict(lo, hi)
        rows.append([method, float(fraction), len(diffs), mean, lo, hi, verdict])
    out = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(method_order(out["method"]))}
    out["_o"] = out["method"].map(order)
    return out.sort_values(["fraction", "_o"]).drop(columns="_o").reset_index(drop=True)


def time_to_accuracy_table(
    df: pd.DataFrame, levels: tuple[float, ...] = TTA_LEVELS
) -> pd.DataFrame:
    """Per (method, fraction): how many seeds reached each share of the full-data run's
    final mAP50-95 (same seed), and the mean kWh and seconds it took them to get there.

    Reads each run's ``curve`` (every validation during training; a run without
    in-training validation has its final point only, so it "reaches" a level at its end
    or never). kWh to reach a level is what the user pays up to that validation: the
    run's reduction (embedding share + selection) plus the curve's cumulative training
    kWh (in-training validations included). Columns:
    ``method``, ``fraction``, ``runs`` (runs with a curve and a full-data run of their
    seed), then per level ``L`` (90, 95, ...): ``reached_L`` (runs that got there),
    ``kwh_L`` and ``seconds_L`` (means over those runs; NaN when none did), and
    ``best_share``: the mean over runs of the best validated mAP50-95 as a share of the
    same seed's full run (how far a run that "never" got there came). Empty when no run
    has a curve.
    """
    keys = [f"{round(100 * lv)}" for lv in levels]
    cols = ["method", "fraction", "runs"] + [
        f"{w}_{k}" for k in keys for w in ("reached", "kwh", "seconds")
    ]
    cols.append("best_share")
    ok = df[df["status"] == "ok"]
    if "curve" not in ok:
        return pd.DataFrame(columns=cols)
    target = ok[ok["method"] == FULL].set_index("seed")["map50_95"]
    rows = []
    for (method, fraction), grp in ok.groupby(["method", "fraction"], sort=False):
        if method == FULL:
            continue
        hits = [
            time_to_accuracy(_with_reduction(_curve(c), row), float(target[row.seed]), levels)
            for row, c in zip(grp.itertuples(), grp["curve"], strict=True)
            if row.seed in target.index and _curve(c)
        ]
        if not hits:
            continue
        row: dict[str, Any] = {"method": method, "fraction": float(fraction), "runs": len(hits)}
        for k in keys:
            got = [h[k] for h in hits if h[k] is not None]
            row[f"reached_{k}"] = len(got)
            row[f"kwh_{k}"] = _mean_of([g["kwh"] for g in got])
            row[f"seconds_{k}"] = _mean_of([g["seconds"] for g in got])
        row["best_share"] = _mean_of(
            [
                _best_map(_curve(c)) / float(target[r.seed])
                for r, c in zip(grp.itertuples(), grp["curve"], strict=True)
                if r.seed in target.index and _curve(c) and float(target[r.seed]) > 0
            ]
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(method_order(out["method"]))}
    out["_o"] = out["method"].map(order)
    return out.sort_values(["fraction", "_o"]).drop(columns="_o").reset_index(drop=True)


def _best_map(curve: list[dict[str, Any]]) -> float:
    return max(_finite(p.get("map50_95")) for p in curve)


def _curve(value: Any) -> list[dict[str, Any]]:
    """A run's curve from the results frame (JSON text, a list, or empty)."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return list(value) if isinstance(value, list) else []


def _with_reduction(curve: list[dict[str, Any]], row: Any) -> list[dict[str, Any]]:
    """The curve with the run's reduction kWh and seconds (embedding share + selection)
    added to every point: time-to-accuracy counts what was spent before training."""
    kwh = sum(_finite(getattr(row, c, None)) for c in ("kwh_embedding", "kwh_selection"))
    sec = sum(_finite(getattr(row, c, None)) for c in ("seconds_embedding", "seconds_selection"))
    return [
        p
        | {
            "kwh": None if p.get("kwh") is None else float(p["kwh"]) + kwh,
            "seconds_training": float(p["seconds_training"]) + sec,
        }
        for p in curve
    ]


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _mean_of(values: list[float | None]) -> float:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def one_line_answer(table: pd.DataFrame) -> str:
    """The sweep's answer in one line, at its largest reduced fraction: the best
    non-baseline method's share of full-data mAP50-95 and energy saved, then the same
    for uniform random (``summary_table`` columns ``map_rel`` and ``kwh_saved``).

    E.g. ``at 50 % of the images: kcenter keeps 96 % of full mAP50-95 for 48 % less
    energy; random keeps 90 % ...``. Empty when the sweep has no finished reduced run.
    """
    done = table[(table["n"] > 0) & (table["method"] != FULL) & (table["fraction"] < 1)]
    if done.empty:
        return ""
    fraction = float(done["fraction"].max())
    at = done[done["fraction"] == fraction]

    def figures(row: pd.Series) -> str:
        rel, saved = row["map_rel"], row["kwh_saved"]
        keep = "–" if pd.isna(rel) else f"{100 * rel:.0f} %"
        less = "–" if pd.isna(saved) else f"{100 * saved:.0f} % less energy"
        return f"{keep} of full mAP50-95 for {less}"

    parts = []
    methods = at[~at["method"].map(is_baseline)]
    if len(methods):
        best = methods.sort_values("map50_95", ascending=False).iloc[0]
        parts.append(f"{best['method']} keeps {figures(best)}")
    for _, row in at[at["method"] == RANDOM].iterrows():
        parts.append(f"random keeps {figures(row)}")
    return f"at {100 * fraction:.0f} % of the images: " + "; ".join(parts)


def _ratio(a: float, b: float) -> float:
    if b is None or not np.isfinite(b) or b == 0 or a is None or not np.isfinite(a):
        return float("nan")
    return float(a) / float(b)


def pareto_front(points: pd.DataFrame, x: str = "kwh", y: str = "map50_95") -> pd.DataFrame:
    """Points not dominated by another (less or equal ``x`` and more or equal ``y``, one strict).

    Sorted by ``x``; O(n log n): sort by x ascending (y descending on ties), then keep each
    point whose y beats every cheaper point's.
    """
    pts = points.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    keep, best = [], -np.inf
    for idx, yv in zip(pts.index, pts[y], strict=True):
        if yv > best:
            keep.append(idx)
            best = yv
    return pts.loc[keep]


def failed_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Runs whose latest row is not ``ok`` (with their one-line error)."""
    if df.empty:
        return df
    return df[df["status"] != "ok"][["run_id", "method", "fraction", "seed", "status", "error"]]
