"""k-nearest-neighbour search for the neighbourhood-based reducers (faiss first, sklearn fallback).

Used by DOM, PHL, facility location, dedup and typicality: one query for all rows.

* Exact search (faiss ``IndexFlatL2``, BLAS GEMM) while ``n²·d`` stays under
  ``exact_work`` multiply-adds.
* Above it, an approximate search: rows projected on their top ``ann_dims`` principal
  directions, then a faiss inverted-file index (``IndexIVFFlat``, ``nlist = 4·√n``
  lists, ``nprobe`` probed), trained on a seeded sample. Distances are then those of the
  projected space (slightly smaller than the true ones).

``benchmarks/bench_reducers.py --knn`` measures faiss against scikit-learn's brute
force search and the IVF index against the exact one.
"""

from __future__ import annotations

import logging

import numpy as np

from detreduce.reducers._linalg import pca

log = logging.getLogger("detreduce")

#: n²·d multiply-adds above which the search turns approximate (≈ 10k rows of d=1280).
EXACT_WORK = 1.3e11
ANN_DIMS = 64
NPROBE = 8


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return None
    return faiss


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from its k+1 results (or the last one if absent)."""
    n = len(idx)
    is_self = idx == np.arange(n)[:, None]
    first = np.argmax(is_self, axis=1)
    first[~is_self.any(axis=1)] = idx.shape[1] - 1
    keep = np.ones_like(is_self)
    keep[np.arange(n), first] = False
    return dist[keep].reshape(n, k), idx[keep].reshape(n, k)


def _search_flat(X: np.ndarray, k: int, backend: str) -> tuple[np.ndarray, np.ndarray]:
    faiss = _faiss() if backend == "faiss" else None
    if faiss is not None:
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X)
        d2, idx = index.search(X, k)
        return d2, idx.astype(np.int64)
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X)
    dist, idx = nn.kneighbors(X)
    return (dist**2).astype(np.float32), idx.astype(np.int64)


def _search_ivf(
    X: np.ndarray, k: int, rng: np.random.Generator, nprobe: int
) -> tuple[np.ndarray, np.ndarray]:
    faiss = _faiss()
    n, d = X.shape
    nlist = max(1, min(int(2 * np.sqrt(n)), n // 32))
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
    index.cp.seed = int(rng.integers(2**31 - 1))
    index.cp.niter = 8
    index.cp.min_points_per_centroid = 1  # silences faiss' stderr warning on small samples
    sample = X[np.sort(rng.choice(n, min(n, 32 * nlist), replace=False))]
    index.train(sample)
    index.add(X)
    index.nprobe = min(nprobe, nlist)
    d2, idx = index.search(X, k)
    missing = (idx < 0).any(axis=1)
    if missing.any():  # too few rows in the probed lists: exact search for those rows
        flat = faiss.IndexFlatL2(d)
        flat.add(X)
        d2[missing], idx[missing] = flat.search(X[missing], k)
    return d2, idx.astype(np.int64)


def knn(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    backend: str = "faiss",
    exact_work: float = EXACT_WORK,
    ann_dims: int = ANN_DIMS,
    nprobe: int = NPROBE,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest *other* rows of every row of ``X``.

    Returns ``(dist, idx)`` of shape (n, k'), k' = min(k, n-1), nearest first, with
    Euclidean (not squared) float32 distances. ``backend`` is ``faiss`` or ``sklearn``
    (exact brute force, for comparison). Cost: O(n²·d) exact; approximate O(n·√n·p)
    with ``p = ann_dims`` (quantizer and probed lists both ~√n rows).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    if float(n) * n * d <= exact_work or backend != "faiss" or _faiss() is None:
        d2, idx = _search_flat(X, k + 1, backend)
    else:
        log.debug("knn: approximate search (PCA %d + IVF) on %d rows", ann_dims, n)
        Z = pca(X, ann_dims, rng) if d > ann_dims else X
        d2, idx = _search_ivf(Z, k + 1, rng, nprobe)
    dist, idx = _drop_self(np.sqrt(np.maximum(d2, 0)).astype(np.float32), idx, k)
    return dist, idx


def symmetric_graph(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the symmetrised kNN graph: ``(indptr, indices, weights)``.

    Each row's neighbours (its own k plus every row that has it among its k) are sorted
    by distance; an edge found from both ends is kept once. O(E log E), E = 2·n·k.
    """
    n, k = idx.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = idx.ravel().astype(np.int64)
    w = dist.ravel().astype(np.float64)
    src, dst, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    _, first = np.unique(src * n + dst, return_index=True)  # one copy of each (src, dst)
    src, dst, w = src[first], dst[first], w[first]
    span = float(w.max()) * 1.000001 + 1e-12 if len(w) else 1.0
    order = np.argsort(src + w / span, kind="stable")  # by row, then by distance
    src, dst, w = src[order], dst[order], w[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(src, minlength=n))
    return indptr, dst, w.astype(np.float32)
