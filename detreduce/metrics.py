"""How representative a selection is, and how far it shifts the label distribution.

Pure functions on arrays, plus :func:`selection_figures` which gathers them for a
detection dataset into a JSON-friendly dict (written into ``selection.json``).

ε-representativeness (Gonzalez-Diaz, Gutiérrez-Naranjo, Paluzo-Hidalgo 2022; used by
Perera-Lago et al. 2024, arXiv 2403.15150): for a class c, ε_c is the directed Hausdorff
distance from the full set's points of class c to the kept points of class c, i.e. the
largest distance from a point to its nearest kept point. Chebyshev (L∞) as in the
reference ``find_epsilon``; Euclidean as an option. Overall ε = max over classes. Unlike
the reference, a class with points but no kept point gives ε = ∞ (the reference skips it
and so reports a selection that dropped a class as perfectly representative).

JSON convention of :func:`selection_figures`: ∞ is written as the string ``"inf"``
(``float("inf")`` reads it back); ``null`` means "undefined" (a class with no point in
the full set). Keys that need embeddings are absent when none were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detreduce.config import default
from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError

METRICS = ("chebyshev", "euclidean")
#: Candidates per query taken from the (fast, BLAS) L2 search to bound each distance.
_CANDIDATES = 16


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric


def _pair_distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Distances between rows ``a`` (p × d) and ``b`` (q × d), exact, as a (p × q) array."""
    diff = np.abs(a[:, None, :] - b[None, :, :])
    if metric == "chebyshev":
        return diff.max(-1)
    return np.sqrt(np.einsum("pqd,pqd->pq", diff, diff, dtype=np.float64))


def _candidate_bounds(A: np.ndarray, B: np.ndarray, metric: str, chunk: int) -> np.ndarray:
    """Per row of A, an upper bound of its distance to B: the exact distance to the best
    of its ``_CANDIDATES`` L2-nearest rows of B (faiss exact flat search)."""
    import faiss

    m = min(len(B), _CANDIDATES)
    index = faiss.IndexFlatL2(A.shape[1])
    index.add(B)
    upper = np.empty(len(A))
    for lo in range(0, len(A), chunk):
        a = A[lo : lo + chunk]
        _, idx = index.search(a, m)
        cand = B[idx]  # (chunk, m, d)
        diff = np.abs(cand - a[:, None, :])
        if metric == "chebyshev":
            d = diff.max(-1)
        else:
            d = np.sqrt(np.einsum("pmd,pmd->pm", diff, diff, dtype=np.float64))
        upper[lo : lo + chunk] = d.min(1)
    return upper


def directed_hausdorff(
    A: np.ndarray,
    B: np.ndarray,
    metric: str = "chebyshev",
    *,
    chunk_rows: int = 1024,
    block: tuple[int, int] = (32, 256),
) -> float:
    """max over rows a of A of min over rows b of B of d(a, b); exact; ∞ if B is empty.

    Why not a KD-tree (the reference's cKDTree): in d = 1280 it degenerates to brute
    force, O(|A|·|B|·d), which is hours at 100k × 25k. Here (Taha & Hanbury's early
    break, vectorised): an L2 faiss search gives each row an upper bound u(a) from its 16
    L2-nearest candidates; rows are visited by decreasing u and only rows with
    u(a) > current max are scanned against B, in blocks, dropping each row as soon as
    some b is within the current max. Memory O(chunk_rows·16·d + block[0]·block[1]·d).
    """
    metric = _check_metric(metric)
    if len(B) == 0:
        return float("inf")
    if len(A) == 0:
        return 0.0
    A = np.ascontiguousarray(A, dtype=np.float32)
    B = np.ascontiguousarray(B, dtype=np.float32)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise ConfigError(f"A and B must be 2-D with equal width, got {A.shape} and {B.shape}")
    upper = _candidate_bounds(A, B, metric, chunk_rows)
    order = np.argsort(-upper, kind="stable")
    best = 0.0
    ra, rb = block
    pos = 0
    while pos < len(order) and upper[order[pos]] > best:
        rows = order[pos : pos + ra]
        rows = rows[upper[rows] > best]
        pos += ra
        run = upper[rows].copy()
        alive = np.ones(len(rows), dtype=bool)
        for lo in range(0, len(B), rb):
            live = np.flatnonzero(alive)
            d = _pair_distance(A[rows[live]], B[lo : lo + rb], metric).min(1)
            run[live] = np.minimum(run[live], d)
            alive[live] = run[live] > best
            if not alive.any():
                break
        if alive.any():
            best = max(best, float(run[alive].max()))
    return best


def nearest_distances(A: np.ndarray, B: np.ndarray, metric: str = "chebyshev") -> np.ndarray:
    """Exact distance from each row of A to its nearest row of B (brute force, O(|A|·|B|·d));
    for checks and small sets — :func:`directed_hausdorff` is the fast path for ε."""
    metric = _check_metric(metric)
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if len(B) == 0:
        return np.full(len(A), np.inf)
    out = np.empty(len(A))
    for lo in range(0, len(A), 64):
        out[lo : lo + 64] = _pair_distance(A[lo : lo + 64], B, metric).min(1)
    return out


def _membership(labels: np.ndarray, n_classes: int | None) -> np.ndarray:
    """(n × C) bool membership from class ids (1-D) or a multi-label count/bool matrix (2-D)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels > 0
    if labels.ndim != 1:
        raise ConfigError(
            f"labels must be 1-D class ids or a 2-D membership matrix, got {labels.shape}"
        )
    c = int(labels.max()) + 1 if n_classes is None and len(labels) else (n_classes or 0)
    out = np.zeros((len(labels), c), dtype=bool)
    out[np.arange(len(labels)), labels] = True
    return out


def _kept_mask(kept: np.ndarray, n: int) -> np.ndarray:
    """Bool mask of kept rows from indices or a mask."""
    kept = np.asarray(kept)
    if kept.size == 0:
        return np.zeros(n, dtype=bool)
    if kept.dtype == bool:
        if kept.shape != (n,):
            raise ConfigError(f"kept mask must have shape ({n},), got {kept.shape}")
        return kept
    mask = np.zeros(n, dtype=bool)
    idx = kept.astype(np.int64).reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= n):
        raise ConfigError(f"kept holds an index outside [0, {n})")
    mask[idx] = True
    return mask


def epsilon_per_class(
    X: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    metric: str | None = None,
    *,
    n_classes: int | None = None,
) -> np.ndarray:
    """ε_c for every class c: directed Hausdorff from rows of class c to kept rows of class c.

    ``labels``: class id per row (boxes) or a multi-label (n × C) matrix (images: a row
    belongs to every class it holds a box of). ``kept``: row indices or a bool mask.
    Returns float array: ∞ where class c has rows but none kept, NaN where it has none.
    """
    metric = _check_metric(default("balance.metric") if metric is None else metric)
    X = np.asarray(X)
    member = _membership(labels, n_classes)
    if len(member) != len(X):
        raise ConfigError(f"labels have {len(member)} rows, X has {len(X)}")
    mask = _kept_mask(kept, len(X))
    out = np.full(member.shape[1], np.nan)
    for c in range(member.shape[1]):
        rows = member[:, c]
        if not rows.any():
            continue
        # Kept rows are at distance 0 from themselves: only the others can set ε.
        out[c] = directed_hausdorff(X[rows & ~mask], X[rows & mask], metric)
    return out


def epsilon_representativeness(
    X: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    metric: str | None = None,
    *,
    n_classes: int | None = None,
) -> float:
    """Overall ε: the max of :func:`epsilon_per_class` over classes with rows (∞ if one is
    dropped; NaN if no class has a row)."""
    per = epsilon_per_class(X, labels, kept, metric, n_classes=n_classes)
    present = ~np.isnan(per)
    return float(per[present].max()) if present.any() else float("nan")


# ----------------------------------------------------------------- distributions
def total_variation(p: np.ndarray | Sequence[float], q: np.ndarray | Sequence[float]) -> float:
    """Total-variation distance ½·Σ|p̂ − q̂| of two histograms, each normalised to sum 1.

    In [0, 1]; an empty histogram against a non-empty one is 1, two empty ones 0.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ConfigError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    sp, sq = p.sum(), q.sum()
    if sp == 0 or sq == 0:
        return 0.0 if sp == sq else 1.0
    return float(0.5 * np.abs(p / sp - q / sq).sum())


def histogram(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per bin ``[edges[i], edges[i+1])``; the last bin ``[edges[-1], ∞)`` is open,
    values below ``edges[0]`` count in the first bin."""
    edges = np.asarray(edges, dtype=np.float64)
    bins = np.clip(
        np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right") - 1, 0, None
    )
    return np.bincount(bins, minlength=len(edges))[: len(edges)]


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Readable labels of :func:`histogram` bins: ``[a,b)`` and ``c+`` for the last."""
    e = list(edges)
    return [f"[{a:g},{b:g})" for a, b in zip(e[:-1], e[1:], strict=True)] + [f"{e[-1]:g}+"]


def class_box_shares(box_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of boxes per class (sums to 1; all zeros when there are no boxes)."""
    counts = np.bincount(np.asarray(box_class, dtype=np.int64), minlength=n_classes).astype(float)
    return counts / counts.sum() if counts.sum() else counts


def relative_box_sizes(dataset: DetectionDataset) -> np.ndarray:
    """Per box, sqrt(box area / image area): the box side relative to the image side.
    Relative (not COCO's absolute pixels) because YOLO resizes every image to ``imgsz``."""
    wh = dataset.image_sizes[dataset.box_image].astype(np.float64)
    img_area = np.maximum(wh[:, 0] * wh[:, 1], 1.0)
    return np.sqrt(np.clip(dataset.box_areas().astype(np.float64), 0, None) / img_area)


# ------------------------------------------------------------------ all figures
def json_float(x: float) -> float | str | None:
    """∞ → ``"inf"``, NaN → ``None``, else a plain float."""
    x = float(x)
    if np.isnan(x):
        return None
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _hist_block(full: np.ndarray, kept: np.ndarray, edges: Sequence[float]) -> dict[str, Any]:
    hf, hk = histogram(full, edges), histogram(kept, edges)
    return {
        "bins": bin_labels(edges),
        "full": hf.tolist(),
        "kept": hk.tolist(),
        "tv": total_variation(hf, hk),
    }


def _epsilon_block(X, labels, kept, metric, names, level) -> dict[str, Any]:
    per = epsilon_per_class(X, labels, kept, metric, n_classes=len(names))
    present = ~np.isnan(per)
    overall = float(np.max(per[present])) if present.any() else float("nan")
    return {
        "metric": metric,
        "level": level,
        "per_class": {name: json_float(v) for name, v in zip(names, per, strict=True)},
        "overall": json_float(overall),
    }


def selection_figures(
    dataset: DetectionDataset,
    kept: np.ndarray | Sequence[int],
    X: np.ndarray | None = None,
    *,
    box_features: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    metric: str | None = None,
    count_edges: Sequence[float] | None = None,
    size_edges: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Every figure of a selection ``kept`` (image indices into ``dataset``, or a bool mask),
    JSON-friendly.

    Keys: ``images``/``boxes`` (full, kept), ``box_share`` (per class, full/kept, ``tv``),
    ``images_per_class``, ``missing_classes``, ``box_count_hist`` (boxes per image) and
    ``box_size_hist`` (sqrt relative box area), each with ``tv``; with ``X`` (image
    embeddings, n × d) ``epsilon`` at image level (an image counts for each class it
    holds); with ``box_features = (box_image, box_class, matrix)`` ``epsilon_box`` on
    the crops (a crop is kept when its image is). ∞ is ``"inf"``, undefined is ``null``.
    """
    metric = _check_metric(default("balance.metric") if metric is None else metric)
    count_edges = default("balance.count_edges") if count_edges is None else count_edges
    size_edges = default("balance.size_edges") if size_edges is None else size_edges
    n, names = dataset.num_images, list(dataset.names)
    mask = _kept_mask(np.asarray(kept), n)
    box_kept = mask[dataset.box_image]
    share_full = class_box_shares(dataset.box_class, len(names))
    share_kept = class_box_shares(dataset.box_class[box_kept], len(names))
    mat = dataset.image_class_matrix() > 0
    img_full, img_kept = mat.sum(0), mat[mask].sum(0)
    per_image = dataset.boxes_per_image()
    sizes = relative_box_sizes(dataset)
    out: dict[str, Any] = {
        "images": {"full": n, "kept": int(mask.sum())},
        "boxes": {"full": dataset.num_boxes, "kept": int(box_kept.sum())},
        "classes": names,
        "box_share": {
            "full": share_full.tolist(),
            "kept": share_kept.tolist(),
            "tv": total_variation(share_full, share_kept),
        },
        "images_per_class": {"full": img_full.tolist(), "kept": img_kept.tolist()},
        "missing_classes": [names[c] for c in np.flatnonzero((img_full > 0) & (img_kept == 0))],
        "box_count_hist": _hist_block(per_image, per_image[mask], count_edges),
        "box_size_hist": _hist_block(sizes, sizes[box_kept], size_edges),
    }
    if X is not None:
        X = np.asarray(X)
        if X.ndim != 2 or len(X) != n:
            raise ConfigError(f"X must have shape ({n}, d) aligned with the images, got {X.shape}")
        out["epsilon"] = _epsilon_block(X, mat, mask, metric, names, "image")
    if box_features is not None:
        b_img, b_cls, B = (np.asarray(a) for a in box_features)
        if not len(b_img) == len(b_cls) == len(B):
            raise ConfigError("box_features: box_image, box_class and matrix differ in length")
        out["epsilon_box"] = _epsilon_block(B, b_cls, mask[b_img], metric, names, "box")
    return out


# ------------------------------------------------------------------ over seeds
def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of ``values`` (one per seed): (mean, lo, hi).

    The interval is ``mean ± t_{(1+level)/2, n-1} · s / √n`` with the sample standard
    deviation ``s`` (ddof 1): the usual small-sample interval for a mean over seeds.
    With fewer than two finite values the bounds are NaN (one seed says nothing about
    spread). O(n).
    """
    from scipy.stats import t

    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


#: Verdicts of :func:`paired_verdict`.
VERDICTS = ("better", "worse", "indistinguishable", "too few seeds")


def paired_verdict(lo: float, hi: float) -> str:
    """``better`` / ``worse`` when the interval of a paired difference excludes 0,
    ``indistinguishable`` when it covers 0, ``too few seeds`` when it is undefined."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "too few seeds"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "indistinguishable"
