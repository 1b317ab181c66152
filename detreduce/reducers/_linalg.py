"""Distance and projection kernels shared by the reducers (float32, BLAS-shaped)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.extmath import randomized_svd


def sq_norms(X: np.ndarray) -> np.ndarray:
    """Squared row norms, float32."""
    return np.einsum("ij,ij->i", X, X, dtype=np.float32)


def sq_dist_to(X: np.ndarray, sq: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from every row of ``X`` to ``c`` (one GEMV), clipped at 0."""
    d = X @ c
    d *= -2.0
    d += sq
    d += float(c @ c)
    np.maximum(d, 0.0, out=d)
    return d


def pairwise_sq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``A`` and ``B`` (one GEMM), clipped at 0."""
    d = A @ B.T
    d *= -2.0
    d += sq_norms(A)[:, None]
    d += sq_norms(B)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def paired_sq_dist(
    A: np.ndarray,
    B: np.ndarray,
    rows_b: np.ndarray,
    rows_a: np.ndarray | None = None,
    chunk: int = 8192,
) -> np.ndarray:
    """Squared distance between row ``rows_a[i]`` (or ``i``) of ``A`` and row ``rows_b[i]``
    of ``B``, in chunks (never materialises more than ``chunk`` rows)."""
    count = len(rows_b)
    out = np.empty(count, dtype=np.float32)
    for s in range(0, count, chunk):
        a = A[s : s + chunk] if rows_a is None else A[rows_a[s : s + chunk]]
        diff = a - B[rows_b[s : s + chunk]]
        out[s : s + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def min_sq_dist(X: np.ndarray, C: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Squared distance of every row of ``X`` to its nearest row of ``C``, in row chunks."""
    out = np.empty(len(X), dtype=np.float32)
    for s in range(0, len(X), chunk):
        out[s : s + chunk] = pairwise_sq(X[s : s + chunk], C).min(axis=1)
    return out


def pca(
    X: np.ndarray,
    n_components: int,
    rng: np.random.Generator,
    *,
    center: bool = True,
    fit_rows: int = 20000,
) -> np.ndarray:
    """Project ``X`` on its top ``n_components`` principal directions (float32).

    Randomized SVD (Halko et al. 2011) fitted on at most ``fit_rows`` rows (a seeded
    sample), then one GEMM to project all rows: O(fit_rows·d·p + n·d·p). With
    ``center=False`` the raw rows are projected (angles to the origin are kept).
    Returns ``X`` itself (as float32) when ``n_components >= d``.
    """
    n, d = X.shape
    if n_components >= d:
        return np.ascontiguousarray(X, dtype=np.float32)
    fit = X if n <= fit_rows else X[np.sort(rng.choice(n, fit_rows, replace=False))]
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    p = min(n_components, len(fit))
    seed = int(rng.integers(2**31 - 1))
    _, _, vt = randomized_svd(
        (fit - mean).astype(np.float32, copy=False), p, n_iter=4, random_state=seed
    )
    vt = vt.astype(np.float32)
    Z = X @ vt.T
    if center:
        Z -= mean @ vt.T
    return np.ascontiguousarray(Z, dtype=np.float32)


def median_distance(X: np.ndarray, rng: np.random.Generator, sample: int = 1000) -> float:
    """Median pairwise Euclidean distance of a seeded sample of rows (the kernel-width heuristic)."""
    rows = X if len(X) <= sample else X[rng.choice(len(X), sample, replace=False)]
    d = pairwise_sq(rows, rows)[np.triu_indices(len(rows), 1)]
    med = float(np.sqrt(np.median(d))) if len(d) else 0.0
    return med if med > 0 else 1.0
