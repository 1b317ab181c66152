"""The three plots of a sweep report (matplotlib, Agg backend: no display needed).

Each function takes the summary table of :func:`detreduce.report.tables.summary_table`
and writes one PNG: mAP50-95 vs kept fraction, energy vs kept fraction, and the
mAP-vs-energy Pareto front. Energies below 0.1 kWh are drawn in Wh so the axis stays
readable.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detreduce.data.atomic import atomic_path  # noqa: E402
from detreduce.methods import method_label  # noqa: E402
from detreduce.report.tables import method_order, pareto_front  # noqa: E402
from detreduce.sweep.grid import FULL  # noqa: E402

MARKERS = "osD^v<>phX*"
DPI = 120


def _energy_scale(values: pd.Series) -> tuple[float, str]:
    """Multiply kWh by the factor returned to plot in the unit returned."""
    top = float(np.nanmax(values)) if len(values) and np.isfinite(values).any() else 0.0
    return (1000.0, "Wh") if top < 0.1 else (1.0, "kWh")


def _styles(methods: list[str]) -> dict[str, dict[str, object]]:
    colors = plt.get_cmap("tab10").colors
    return {
        m: {"color": colors[i % len(colors)], "marker": MARKERS[i % len(MARKERS)]}
        for i, m in enumerate(methods)
    }


def _full_line(ax, mean: float, std: float, label: str) -> None:
    if not np.isfinite(mean):
        return
    ax.axhline(mean, color="black", linestyle="--", linewidth=1.2, label=label)
    if np.isfinite(std) and std > 0:
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.08)


def _dodge(i: int, n: int, width: float = 1.5) -> float:
    """A small x offset (percentage points) so error bars of methods at one fraction do not hide each other."""
    return 0.0 if n < 2 else width * (i / (n - 1) - 0.5)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _save(fig, path: Path) -> Path:
    """Write the figure atomically (a report never links half a PNG) and close it."""
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format=Path(path).suffix.lstrip(".") or None)
    finally:
        plt.close(fig)
    return path


def plot_map_vs_fraction(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """mAP50-95 (mean ± std over seeds) vs kept fraction, one line per method, full data dashed."""
    title = title or "Accuracy vs training-set size (mean ± std over seeds)"
    return _plot_vs_fraction(table, path, "map50_95", 1.0, "mAP50-95 on the full val split", title)


def plot_kwh_vs_fraction(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Total energy per run (embedding share + selection + training + validation) vs fraction."""
    scale, unit = _energy_scale(table["kwh"])
    title = title or "Energy vs training-set size (all phases, mean ± std)"
    ylabel = f"total energy per run ({unit})"
    return _plot_vs_fraction(table, path, "kwh", scale, ylabel, title, from_zero=True)


def _plot_vs_fraction(
    table: pd.DataFrame,
    path: Path,
    column: str,
    scale: float,
    ylabel: str,
    title: str,
    from_zero: bool = False,
) -> Path:
    """``column`` (mean ± ``column_std`` over seeds, times ``scale``) vs kept fraction."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    reduced = table[table["method"] != FULL]
    methods = method_order(reduced["method"])
    styles = _styles(methods)
    for i, m in enumerate(methods):
        t = reduced[reduced["method"] == m].sort_values("fraction")
        ax.errorbar(
            100 * t["fraction"] + _dodge(i, len(methods)),
            scale * t[column],
            yerr=scale * t[f"{column}_std"].fillna(0),
            label=method_label(m),
            capsize=3,
            linewidth=1.5,
            **styles[m],
        )
    full = table[table["method"] == FULL]
    if len(full):
        row = full.iloc[0]
        _full_line(ax, scale * row[column], scale * row[f"{column}_std"], "full data (100 %)")
    ax.set_xlabel("kept share of the training images (%)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if from_zero:
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def plot_pareto(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """mAP50-95 vs total energy per run; the non-dominated points joined by a step line."""
    scale, unit = _energy_scale(table["kwh"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = method_order(table[table["method"] != FULL]["method"])
    styles = _styles(methods)
    for m in methods:
        t = table[table["method"] == m]
        ax.scatter(
            scale * t["kwh"], t["map50_95"], label=method_label(m), s=40, zorder=3, **styles[m]
        )
        for _, r in t.iterrows():
            ax.annotate(
                f"{100 * r['fraction']:g}%",
                (scale * r["kwh"], r["map50_95"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    full = table[table["method"] == FULL]
    if len(full):
        ax.scatter(
            scale * full["kwh"],
            full["map50_95"],
            marker="*",
            s=180,
            color="black",
            label="full data",
            zorder=4,
        )
    front = pareto_front(table)
    if len(front) > 1:
        ax.step(
            scale * front["kwh"],
            front["map50_95"],
            where="post",
            color="gray",
            linestyle=":",
            linewidth=1.2,
            label="Pareto front",
            zorder=2,
        )
    ax.set_xlabel(f"total energy per run ({unit})")
    ax.set_ylabel("mAP50-95 on the full val split")
    ax.set_title(title or "Accuracy vs energy (up and left is better)")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def write_plots(table: pd.DataFrame, out_dir: Path, title_suffix: str = "") -> dict[str, Path]:
    """All three plots into ``out_dir``; returns {name: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sfx = f" — {title_suffix}" if title_suffix else ""
    return {
        "map_vs_fraction": plot_map_vs_fraction(
            table, out_dir / "map_vs_fraction.png", f"mAP50-95 vs kept fraction{sfx}"
        ),
        "kwh_vs_fraction": plot_kwh_vs_fraction(
            table, out_dir / "kwh_vs_fraction.png", f"Energy per run vs kept fraction{sfx}"
        ),
        "pareto": plot_pareto(table, out_dir / "pareto.png", f"mAP50-95 vs energy{sfx}"),
    }
