"""Inline SVG charts for the selection page: pure functions from numbers to markup.

The page must open offline with no plotting library, so charts are plain SVG strings
(no ``xmlns``: inline SVG in HTML needs none, and the page then holds no URL at all).
Every text is escaped; every number is rounded to what a screen can show.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

#: Class colours: distinct hues, no grey (grey is for images without boxes).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e7ba52",
    "#637939",
)
NO_BOX_COLOR = "#9e9e9e"
BEFORE_COLOR = "#b8c2cc"
AFTER_COLOR = "#1f5f99"


def class_colors(n: int) -> list[str]:
    """``n`` colours: the palette, then golden-angle hues (distinct for any number of classes)."""
    out = list(PALETTE[:n])
    for i in range(len(out), n):
        hue = (i * 137.508) % 360
        out.append(_hsl_hex(hue, 0.62, 0.45))
    return out


def _hsl_hex(h: float, s: float, lightness: float) -> str:
    c = (1 - abs(2 * lightness - 1)) * s
    x = c * (1 - abs((h / 60) % 2 - 1))
    m = lightness - c / 2
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h // 60) % 6]
    return "#" + "".join(f"{round((v + m) * 255):02x}" for v in (r, g, b))


def pca_2d(X: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The rows of ``X`` (n × d) on their first two principal axes, and each axis's
    share of the variance.

    PCA through the thin SVD of the centred matrix, O(n·d·min(n, d)); each axis's sign
    is fixed (largest loading positive) so one input always draws the same picture.
    Fewer than two distinct rows give zeros.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    out = np.zeros((n, 2))
    if n < 2 or X.ndim != 2 or X.shape[1] == 0:
        return out, (0.0, 0.0)
    Xc = X - X.mean(0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    total = float((s**2).sum())
    if total <= 0:
        return out, (0.0, 0.0)
    k = min(2, len(s))
    for j in range(k):
        if vt[j, np.argmax(np.abs(vt[j]))] < 0:
            vt[j] = -vt[j]
    out[:, :k] = Xc @ vt[:k].T
    share = [float(s[j] ** 2 / total) if j < k else 0.0 for j in range(2)]
    return out, (share[0], share[1])


def scatter_svg(
    xy: np.ndarray,
    kept: np.ndarray,
    colors: Sequence[str],
    titles: Sequence[str],
    rows: Sequence[int],
    *,
    axes: tuple[str, str] = ("", ""),
    size: int = 560,
) -> str:
    """The embedding map: one ``<circle class="pt kept|dropped" data-i=row>`` per point,
    kept filled, dropped hollow, dropped drawn first so kept points stay on top."""
    xy = np.asarray(xy, dtype=np.float64)
    kept = np.asarray(kept, dtype=bool)
    pad, r = 14, 3.6
    lo, hi = (xy.min(0), xy.max(0)) if len(xy) else (np.zeros(2), np.ones(2))
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    inner = size - 2 * pad
    px = pad + (xy - lo) / span * inner
    px[:, 1] = size - px[:, 1]  # y up
    parts = [
        f'<svg class="map" viewBox="0 0 {size} {size + 18}" width="{size}" height="{size + 18}" '
        'role="img" aria-label="embedding map">',
        f'<rect x="0.5" y="0.5" width="{size - 1}" height="{size - 1}" class="frame"/>',
    ]
    for want_kept in (False, True):
        for j in np.flatnonzero(kept == want_kept):
            x, y = px[j]
            c = colors[j]
            paint = (
                f'fill="{c}" stroke="#222" stroke-width="0.5"'
                if want_kept
                else (f'fill="none" stroke="{c}" stroke-width="1.3"')
            )
            cls = "kept" if want_kept else "dropped"
            parts.append(
                f'<circle class="pt {cls}" data-i="{int(rows[j])}" cx="{x:.1f}" cy="{y:.1f}" '
                f'r="{r}" {paint}><title>{escape(titles[j])}</title></circle>'
            )
    parts.append(
        f'<text x="{size / 2:.0f}" y="{size + 14}" text-anchor="middle" class="axis">'
        f"{escape(axes[0])}</text>"
    )
    parts.append(
        f'<text x="10" y="{size / 2:.0f}" transform="rotate(-90 10 {size / 2:.0f})" '
        f'text-anchor="middle" class="axis">{escape(axes[1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    title: str,
    labels: Sequence[str],
    before: Sequence[float],
    after: Sequence[float],
    *,
    unit: str = "images",
    width: int = 330,
    height: int = 200,
) -> str:
    """Before/after shares per bin as paired bars (counts in each bar's tooltip).

    Shares, not counts, because the reduced set is smaller by design: what matters is
    whether its distribution moved.
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    sb = b / b.sum() if b.sum() else b
    sa = a / a.sum() if a.sum() else a
    top = max(float(sb.max(initial=0)), float(sa.max(initial=0)), 1e-9)
    left, right, head, foot = 30, 6, 22, 58
    plot_w, plot_h = width - left - right, height - head - foot
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(1.0, slot * 0.38)
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{width / 2:.0f}" y="14" text-anchor="middle" class="title">{escape(title)}</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = head + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 3}" y="{y + 3:.1f}" text-anchor="end" class="tick">'
            f"{100 * top * frac:.0f}%</text>"
        )
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot / 2
        for k, (share, count, color, when) in enumerate(
            ((sb[i], b[i], BEFORE_COLOR, "before"), (sa[i], a[i], AFTER_COLOR, "after"))
        ):
            h = plot_h * share / top
            x = x0 - bar + k * bar
            tip = f"{label}: {when} {count:g} {unit} ({100 * share:.1f} %)"
            parts.append(
                f'<rect class="bar {when}" x="{x:.1f}" y="{head + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        ty = head + plot_h + 10
        parts.append(
            f'<text x="{x0:.1f}" y="{ty:.1f}" transform="rotate(-40 {x0:.1f} {ty:.1f})" '
            f'text-anchor="end" class="tick">{escape(_short(label))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, n: int = 14) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"
