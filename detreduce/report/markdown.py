"""``report.md`` of a sweep: protocol, summary table, plots, every run.

The report states how each number was made (budget policy, epochs, image size, model,
device, energy mode, how the shared embedding energy was charged) because a figure
without its protocol misleads: at equal epochs a reduced run also trains fewer steps.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from detreduce.data.atomic import write_text
from detreduce.methods import method_label
from detreduce.report.plots import write_plots
from detreduce.report.tables import (
    failed_runs,
    full_reference,
    load_sweep,
    method_order,
    one_line_answer,
    paired_to_random,
    summary_table,
    time_to_accuracy_table,
)
from detreduce.sweep.grid import FULL

REPORT_NAME = "report.md"
PLOTS_DIR = "plots"


def _fmt(value: Any, spec: str = ".3f", pct: bool = False) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value) if value not in (None, "") else "–"
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{100 * v:+.1f} %" if pct else format(v, spec)


def energy_unit(kwh: pd.Series | list[float]) -> tuple[float, str]:
    """(factor, unit) to print energies: Wh when every value is below 0.1 kWh."""
    vals = pd.to_numeric(pd.Series(kwh), errors="coerce").dropna()
    return (1000.0, "Wh") if len(vals) and vals.abs().max() < 0.1 else (1.0, "kWh")


def _energy(value: Any, scale: float = 1.0) -> str:
    try:
        v = float(value) * scale
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(v) else f"{v:.3g}"


def _overrides(args: dict[str, Any] | None) -> str:
    if not args:
        return "none (Ultralytics defaults)"
    return ", ".join(f"`{k}={v}`" for k, v in sorted(args.items()))


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary_markdown(table: pd.DataFrame, unit: tuple[float, str] = (1.0, "kWh")) -> str:
    """The per-(method, fraction) table as Markdown (relative figures against full data)."""
    scale, name = unit
    header = [
        "method",
        "fraction",
        "seeds",
        "mAP50-95 (mean ± std)",
        "95 % interval",
        "mAP50",
        "mAP vs full",
        f"{name} / run",
        "energy saved vs full",
        "ε",
        "seconds / run",
        "image passes vs full",
    ]
    rows = []
    for _, r in table.iterrows():
        rel = r["map_rel"]
        rows.append(
            [
                method_label(str(r["method"])),
                _fmt(r["fraction"], ".2f"),
                f"{int(r['n'])}" + (f" ({int(r['failed'])} failed)" if r["failed"] else ""),
                f"{_fmt(r['map50_95'])} ± {_fmt(r['map50_95_std'])}",
                _interval(r["map50_95_lo"], r["map50_95_hi"]),
                _fmt(r["map50"]),
                "–" if pd.isna(rel) else f"{100 * rel:.1f} %",
                _energy(r["kwh"], scale),
                "–" if r["method"] == FULL else _fmt(r["kwh_saved"], pct=True),
                _fmt(r["eps"], ".3g"),
                _fmt(r["seconds"], ".0f"),
                "–" if pd.isna(r.get("passes_rel")) else f"{100 * r['passes_rel']:.0f} %",
            ]
        )
    return _md_table(header, rows)


def _interval(lo: float, hi: float, spec: str = ".3f") -> str:
    return "–" if pd.isna(lo) or pd.isna(hi) else f"[{lo:{spec}}, {hi:{spec}}]"


def tta_markdown(tta: pd.DataFrame, unit: tuple[float, str] = (1.0, "kWh")) -> str:
    """Time to accuracy (:func:`time_to_accuracy_table`): per level, the mean energy and
    seconds to first reach that share of full-data mAP50-95, and how many seeds did."""
    scale, name = unit
    levels = [c.split("_", 1)[1] for c in tta.columns if c.startswith("reached_")]
    header = ["method", "fraction"] + [f"{lv} % of full ({name}, s)" for lv in levels]
    header.append("best of full")
    rows = []
    for _, r in tta.iterrows():
        cells = [method_label(str(r["method"])), _fmt(r["fraction"], ".2f")]
        for lv in levels:
            got, runs = int(r[f"reached_{lv}"]), int(r["runs"])
            if got == 0:
                cells.append(f"never (0/{runs})")
                continue
            cells.append(
                f"{_energy(r[f'kwh_{lv}'], scale)}, {_fmt(r[f'seconds_{lv}'], '.0f')} s ({got}/{runs})"
            )
        best = r.get("best_share")
        cells.append("–" if best is None or pd.isna(best) else f"{100 * best:.0f} %")
        rows.append(cells)
    return _md_table(header, rows)


def paired_markdown(paired: pd.DataFrame) -> str:
    """Each method against uniform random, paired by seed (:func:`paired_to_random`)."""
    header = [
        "method",
        "fraction",
        "seed pairs",
        "Δ mAP50-95 vs random",
        "95 % interval",
        "verdict",
    ]
    words = {
        "better": "**better than random**",
        "worse": "worse than random",
        "indistinguishable": "indistinguishable from random",
        "too few seeds": "too few seeds (needs ≥ 2)",
    }
    rows = [
        [
            method_label(str(r["method"])),
            _fmt(r["fraction"], ".2f"),
            str(int(r["pairs"])),
            "–" if pd.isna(r["diff"]) else f"{r['diff']:+.3f}",
            _interval(r["lo"], r["hi"], "+.3f"),
            "no random run at this fraction (a training policy sees every image: compare "
            "it with full data and by image passes)"
            if int(r["pairs"]) == 0
            else words[r["verdict"]],
        ]
        for _, r in paired.iterrows()
    ]
    return _md_table(header, rows)


def runs_markdown(df: pd.DataFrame, unit: tuple[float, str] = (1.0, "kWh")) -> str:
    """Every run (latest row per run id) as a Markdown table."""
    scale, name = unit
    header = [
        "run",
        "status",
        "mAP50-95",
        "mAP50",
        f"{name} total",
        f"{name} train",
        "seconds",
        "epochs",
        "steps",
        "kept",
    ]
    rows = []
    order = {m: i for i, m in enumerate(method_order(df["method"]))}
    df = df.assign(_o=df["method"].map(order)).sort_values(["seed", "_o", "fraction"])
    for _, r in df.iterrows():
        rows.append(
            [
                f"`{r['run_id']}`",
                str(r["status"]),
                _fmt(r.get("map50_95")),
                _fmt(r.get("map50")),
                _energy(r.get("kwh_total"), scale),
                _energy(r.get("kwh_training"), scale),
                _fmt(r.get("seconds"), ".0f"),
                _fmt(r.get("epochs"), ".0f"),
                _fmt(r.get("steps"), ".0f"),
                _fmt(r.get("n_kept"), ".0f"),
            ]
        )
    return _md_table(header, rows)


def protocol_markdown(
    config: dict[str, Any], df: pd.DataFrame, unit: tuple[float, str] = (1.0, "kWh")
) -> str:
    """The protocol paragraph: what was trained, how, where, and how energy was counted."""
    scale, name = unit
    proto = config.get("protocol", {})
    emb = config.get("embedding") or {}
    modes = sorted({str(m) for m in df.get("energy_mode", pd.Series(dtype=str)).dropna() if m})
    budget = proto.get("budget", "?")
    devices = sorted({str(d) for d in df.get("device", pd.Series(dtype=str)).dropna() if d})
    ran_on = (
        f" (ran on {', '.join(devices)})" if devices and devices != [proto.get("device")] else ""
    )
    budget_text = {
        "epochs": "every run trains the same number of epochs, so reduced runs also take "
        "fewer optimizer steps",
        "steps": "reduced runs train 1/fraction times more epochs (capped), so runs are "
        "compared at about equal optimizer steps",
    }.get(budget, "unknown budget policy")
    lines = [
        f"- **Dataset**: `{config.get('data', proto.get('dataset', '?'))}` "
        f"(fingerprint `{proto.get('fingerprint', '?')}`; {config.get('n_train', '?')} train images "
        f"are reduced, the val split ({config.get('n_val', '?')} images) is never reduced)",
        f"- **Model**: `{proto.get('model', '?')}` trained from the file given, "
        f"imgsz {proto.get('imgsz', '?')}, batch {proto.get('batch', '?')}, "
        f"device `{proto.get('device', '?')}`{ran_on}, workers {proto.get('workers', '?')}",
        f"- **Ultralytics overrides**: {_overrides(proto.get('train_args'))}",
        f"- **Budget**: `{budget}` — {budget_text}; epochs = {proto.get('epochs', '?')} "
        "(the epochs and steps each run actually took are in the run table)",
        f"- **Selection**: backbone `{proto.get('backbone', '?')}`, balance "
        f"`{proto.get('balance', '?')}`, level `{proto.get('level', '?')}`; "
        f"seeds {config.get('seeds', '?')}",
        f"- **Energy**: codecarbon offline tracker, CPU power mode: {', '.join(modes) or 'unknown'}. "
        "A run's total = its share of the embedding + selection and export + training + validation.",
    ]
    if emb:
        charged = emb.get("charged_runs", 0)
        share = emb.get("kwh", 0.0) / charged if charged else 0.0
        lines.append(
            f"- **Embedding charge**: the train split was embedded once ({_energy(emb.get('kwh'), scale)} {name}, "
            f"{_fmt(emb.get('seconds'), '.0f')} s, backbone `{emb.get('backbone', '?')}`); that energy is "
            f"split evenly over the {charged} reduced runs that use features ({_energy(share, scale)} {name} each), "
            "so the sweep's total counts it once. Runs of methods that need no features "
            "(full, random, ultralytics_fraction) carry no embedding share. A user who embeds for a "
            "single reduction pays the whole embedding: see `kwh_embedding_whole` in results.csv."
        )
    else:
        lines.append("- **Embedding charge**: no method in this sweep used embeddings.")
    return "\n".join(lines)


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.md`` and its PNG plots (in ``run_dir/plots``); return the report path."""
    from detreduce.errors import DetReduceError

    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").exists():
        raise DetReduceError(
            f"{run_dir / 'results.csv'}: not found; point at a sweep folder (`detreduce sweep ... --out DIR`)"
        )
    df, config = load_sweep(run_dir)
    if df.empty:
        raise DetReduceError(
            f"{run_dir / 'results.csv'}: no finished runs to report; run `detreduce sweep` first"
        )
    table = summary_table(df)
    unit = energy_unit(df.loc[df["status"] == "ok", "kwh_total"])
    ok_table = table[table["n"] > 0]
    name = run_dir.name
    plots = write_plots(ok_table, run_dir / PLOTS_DIR, title_suffix=name)
    ref = full_reference(df)
    failed = failed_runs(df)
    parts = [
        f"# detreduce sweep report: {name}",
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from `results.csv` "
        f"({int((df['status'] == 'ok').sum())} finished runs, {len(failed)} failed).",
    ]
    answer = one_line_answer(table)
    if answer:
        parts += ["", f"**In one line**: {answer}."]
    tta = time_to_accuracy_table(df)
    if len(tta):
        parts += [
            "",
            "## Time to accuracy",
            "",
            tta_markdown(tta, unit),
            "",
            "Energy and seconds (the run's reduction, then training and in-training "
            "validation; mean over the seeds that got there) until a run first reached "
            "that share of the full-data run's final mAP50-95 of the same seed; (k/n): k "
            "of n seeds reached it. Read from each run's validation curve: every "
            "`--val-every` epochs, or the final validation alone. Best of full: the "
            "highest validated mAP50-95 of each run as a share of its seed's full run "
            "(mean over seeds), how far runs that never got there came.",
        ]
    if config.get("command"):
        parts += ["", "Command:", "", "```", str(config["command"]), "```"]
    parts += [
        "",
        "## Protocol",
        "",
        protocol_markdown(config, df, unit),
        "",
        "## Summary per method and fraction",
        "",
        f"Full data: mAP50-95 {_fmt(ref['map50_95'])} ± {_fmt(ref['map50_95_std'])}, "
        f"{_energy(ref['kwh_total'], unit[0])} {unit[1]} and {_fmt(ref['seconds'], '.0f')} s per run "
        f"(mean ± population std over {ref['n']} seed(s)).",
        "",
        summary_markdown(table, unit),
        "",
        "*95 % interval*: Student-t interval of the mean mAP50-95 over seeds (– with one seed). "
        "*mAP vs full* = mean mAP50-95 of the row / mean mAP50-95 of full data. "
        "*energy saved vs full* = 1 − (mean energy per run of the row / mean energy per full-data "
        "run); "
        "negative means the run cost more. *ε* = ε-representativeness of the kept set "
        "(max distance from a train image to its nearest kept image of its class in embedding "
        "space, lower is better; 0 for full data). It is computed for every method, baselines included, "
        "from the sweep's one embedding; – when no method of the sweep needed embeddings. "
        "*image passes vs full* = images forwarded in training (all epochs) / the full-data "
        "run's: what a static reduction and a training policy (InfoBatch, CREST) save, in "
        "one unit.",
        "",
        "## Against uniform random, paired by seed",
        "",
        paired_markdown(paired_to_random(df)),
        "",
        "Δ = mAP50-95 of the method minus that of uniform `random` at the same fraction and "
        "seed; the interval is the 95 % Student-t interval of the mean Δ over seeds. A method "
        "whose interval covers 0 is *indistinguishable from random* with these seeds.",
        "",
        "## Plots",
        "",
        f"![mAP50-95 vs fraction]({PLOTS_DIR}/{plots['map_vs_fraction'].name})",
        "",
        f"![energy vs fraction]({PLOTS_DIR}/{plots['kwh_vs_fraction'].name})",
        "",
        f"![mAP vs energy Pareto front]({PLOTS_DIR}/{plots['pareto'].name})",
        "",
        "## Every run",
        "",
        runs_markdown(df, unit),
    ]
    if len(failed):
        parts += ["", "## Failed runs", ""]
        parts += [f"- `{r.run_id}`: {r.error}" for r in failed.itertuples()]
    parts += [
        "",
        "Sweep config:",
        "",
        "```json",
        json.dumps(config, indent=2, default=str),
        "```",
        "",
    ]
    path = run_dir / REPORT_NAME
    write_text(path, "\n".join(parts))
    return path
