"""Lloyd k-means (faiss, seeded) and its two-level form for budgets in the tens of thousands.

CLC and typicality need k-means with k = budget. One Lloyd iteration costs O(n·k·d); when
that exceeds ``work_limit`` multiply-adds the rows are first split into
``m = ceil(n·k·d / work_limit)`` coarse partitions (see :mod:`._partition`), each gets a
share of the k centroids proportional to its size, and k-means runs inside each
partition: O(n·(k/m)·d) per iteration (hierarchical k-means, as in Nistér & Stewénius
2006; each coarse cell is a k-means problem on its own).
"""

from __future__ import annotations

import numpy as np

from detreduce.reducers._linalg import pairwise_sq


def _assign(X: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row and its squared distance."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        labels = np.empty(len(X), dtype=np.int64)
        d2 = np.empty(len(X), dtype=np.float32)
        for s in range(0, len(X), 4096):
            D = pairwise_sq(X[s : s + 4096], C)
            labels[s : s + 4096] = D.argmin(axis=1)
            d2[s : s + 4096] = D.min(axis=1)
        return labels, d2
    index = faiss.IndexFlatL2(C.shape[1])
    index.add(np.ascontiguousarray(C, dtype=np.float32))
    d2, labels = index.search(X, 1)
    return labels[:, 0].astype(np.int64), d2[:, 0]


def kmeans(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    niter: int = 20,
    sample_per_centroid: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means: ``(centroids (k, d), labels (n,))``. O(niter·n·k·d).

    faiss initialises with k distinct random rows (seeded) and re-seeds empty clusters by
    splitting large ones. ``sample_per_centroid`` trains on at most that many rows per
    centroid (a seeded sample), then assigns every row.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    if k >= n:
        return X.copy(), np.arange(n, dtype=np.int64)
    if k == 1:
        return X.mean(axis=0, keepdims=True), np.zeros(n, dtype=np.int64)
    seed = int(rng.integers(2**31 - 1))
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        from sklearn.cluster import KMeans

        km = KMeans(k, n_init=1, max_iter=niter, random_state=seed).fit(X)
        return km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64)
    km = faiss.Kmeans(
        d,
        k,
        niter=niter,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # no stderr warning for small n/k
        max_points_per_centroid=sample_per_centroid or max(n, 1),
    )
    km.train(X)
    labels, _ = _assign(X, km.centroids)
    return km.centroids.copy(), labels


def kmeans_large(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    niter: int,
    work_limit: float,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means with k centroids, two-level when ``n·k·d > work_limit`` (see module doc)."""
    from detreduce.reducers._partition import n_partitions, partition_rows
    from detreduce.reducers._strata import allocate

    n, d = X.shape
    m = min(k, n_partitions(n, k, d, work_limit))
    if m <= 1:
        return kmeans(X, k, rng, niter=niter)
    parts = partition_rows(X, m, rng)
    quotas = allocate(np.array([len(p) for p in parts]), k)  # >= 1 each, as k >= m
    centroids = np.empty((k, d), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    offset = 0
    for part, q in zip(parts, quotas, strict=True):
        c, lab = kmeans(X[part], int(q), rng, niter=niter)
        centroids[offset : offset + q] = c
        labels[part] = lab + offset
        offset += int(q)
    return centroids, labels
