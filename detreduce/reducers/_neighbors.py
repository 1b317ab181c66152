"""k-nearest-neighbour search for the neighbourhood-based reducers (faiss first, sklearn fallback).

Used by DOM, PHL, facility location, dedup and typicality: one query for all rows.

* Exact search (faiss ``IndexFlatL2``, BLAS GEMM) while ``n²·d`` stays under
  ``exact_work`` multiply-adds.
* Above it, an approximate search: rows projected on their top ``ann_dims`` principal
  directions, then a faiss inverted-file index (``IndexIVFFlat``, ``nlist = 4·√n``
  lists, ``nprobe`` probed), trained on a seeded sample. Distances are then those of the
  projected space (slightly smaller than the true ones).

When faiss sees a GPU (a faiss-gpu build, ``faiss.get_num_gpus() > 0``), the same
indexes search on GPU 0 (copied with ``index_cpu_to_gpu``; IVF training stays on CPU, so
the lists are the same); the CPU path is the tested one, and results differ only by
float rounding. :func:`nearest` (one nearest row of a small set, the assignment step of
the large partitionings in :mod:`._partition`) takes the same route.

``benchmarks/bench_reducers.py --knn`` measures faiss against scikit-learn's brute
force search and the IVF index against the exact one; ``benchmarks/bench_million.py``
the methods at a million rows.
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
#: Search on a GPU when faiss sees one (False: always CPU).
USE_GPU = True
#: Largest k a faiss GPU index returns; larger searches stay on CPU.
GPU_MAX_K = 2048

_gpu_resources = None


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return None
    return faiss


def _on_device(index, k: int):
    """``index`` copied to GPU 0 when faiss sees a GPU (and ``k`` fits), else ``index``."""
    global _gpu_resources
    faiss = _faiss()
    if not USE_GPU or faiss is None or k > GPU_MAX_K or faiss.get_num_gpus() <= 0:
        return index
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    log.debug("faiss: %s on GPU 0", type(index).__name__)
    return faiss.index_cpu_to_gpu(_gpu_resources, 0, index)


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
        index = _on_device(faiss.IndexFlatL2(X.shape[1]), k)
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
    index = _on_device(index, k)
    index.nprobe = min(nprobe, nlist)
    index.add(X)
    d2, idx = index.search(X, k)
    missing = (idx < 0).any(axis=1)
    if missing.any():  # too few rows in the probed lists: exact search for those rows
        flat = _on_device(faiss.IndexFlatL2(d), k)
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


def nearest(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``C`` for every row of ``X`` (exact; faiss, GPU when
    present). O(n·m·d) time, O(n) memory beyond the inputs."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    C = np.ascontiguousarray(C, dtype=np.float32)
    faiss = _faiss()
    if faiss is None:  # pragma: no cover - faiss-cpu is a dependency
        from detreduce.reducers._kmeans import assign

        return assign(X, C)[0]
    index = _on_device(faiss.IndexFlatL2(C.shape[1]), 1)
    index.add(C)
    _, idx = index.search(X, 1)
    return idx[:, 0].astype(np.int64)


def symmetric_graph(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the symmetrised kNN graph: ``(indptr, indices, weights)``.

    Each row's neighbours (its own k plus every row that has it among its k) are sorted
    by distance (ties: lower index first); an edge found from both ends is kept once,
    with the distance from its source row's own search. O(E log E) time, E = 2·n·k, and
    about 24·E bytes at the peak (one int64 key per edge, its sort order and the sorted
    keys; 1.5 GB for a million rows of k = 32).
    """
    n, k = idx.shape
    nk = n * k
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = idx.ravel().astype(np.int64)
    keys = np.empty(2 * nk, dtype=np.int64)  # src·n + dst: own edges, then reversed ones
    np.multiply(rows, n, out=keys[:nk])
    keys[:nk] += cols
    np.multiply(cols, n, out=keys[nk:])
    keys[nk:] += rows
    del rows, cols
    edge = np.argsort(keys, kind="stable")  # by (src, dst); the own edge first
    keys = keys[edge]
    first = np.ones(len(keys), dtype=bool)  # one copy of each (src, dst)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    edge = edge[first]
    keys = keys[first]
    del first
    w = dist.ravel()[edge % nk].astype(np.float64) if nk else np.zeros(0)
    del edge
    src, dst = np.divmod(keys, n) if n else (keys, keys)
    del keys
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(src, minlength=n))
    span = float(w.max()) * 1.000001 + 1e-12 if len(w) else 1.0
    key = w / span
    key += src
    del src
    order = np.argsort(key, kind="stable")  # by row, then by distance
    del key
    return indptr, dst[order], w[order].astype(np.float32)
