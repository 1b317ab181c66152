"""k-means (k-means++ init, Lloyd, seeded) and its two-level form for large budgets.

CLC and typicality need k-means with k = the budget: ``niter`` Lloyd iterations cost
O(niter·n·k·d). When that exceeds ``work_limit`` multiply-adds the rows are first split
into ``m = ceil(niter·n·k·d / work_limit)`` coarse partitions (see :mod:`._partition`),
each gets a share of the k centroids proportional to its size, and k-means runs inside
each partition: O(niter·n·(k/m)·d) (hierarchical k-means, as in Nistér & Stewénius
2006; each coarse cell is a k-means problem on its own).

Plain numpy (BLAS GEMM assignment, early stop when labels settle). faiss' k-means is
faster per iteration on one large problem, but runs every iteration and had a ~0.2 s
fixed cost per call on the tiny partitions the two-level form makes by the thousand
(benchmarks/NOTES_reducers.md).
"""

from __future__ import annotations

import numpy as np

from detreduce.quotas import allocate
from detreduce.reducers._linalg import sq_dist_to, sq_norms


def assign(X: np.ndarray, C: np.ndarray, sq: np.ndarray | None = None) -> tuple:
    """Nearest centroid of every row and the squared distance to it (chunked GEMM)."""
    sq = sq_norms(X) if sq is None else sq
    sqc = sq_norms(C)
    labels = np.empty(len(X), dtype=np.int64)
    d2 = np.empty(len(X), dtype=np.float32)
    step = max(1, 4_000_000 // max(len(C), 1))
    for s in range(0, len(X), step):
        D = X[s : s + step] @ C.T
        D *= -2.0
        D += sqc[None, :]
        lab = D.argmin(axis=1)
        labels[s : s + step] = lab
        d2[s : s + step] = np.maximum(D[np.arange(len(lab)), lab] + sq[s : s + step], 0.0)
    return labels, d2


def lloyd(X: np.ndarray, init: np.ndarray, niter: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations from ``init``; stops early when no label changes. O(niter·n·k·d).

    An empty cluster is re-seeded with the row farthest from its centroid (not yet used).
    """
    C = np.array(init, dtype=np.float32)
    k = len(C)
    sq = sq_norms(X)
    labels, d2 = assign(X, C, sq)
    for _ in range(niter):
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=k)
        present = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts[present])[:-1]])
        C[present] = np.add.reduceat(X[order], starts, axis=0) / counts[present, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            far = np.argsort(-d2, kind="stable")[: len(empty)]
            C[empty] = X[far]
        new, d2 = assign(X, C, sq)
        if np.array_equal(new, labels):
            break
        labels = new
    return C, labels


def d2_sampling(
    X: np.ndarray, k: int, rng: np.random.Generator, work_limit: float = float("inf")
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) of ``k`` distinct rows.

    Returns ``(picks in order, final squared distance of every row to the picks)``.
    O(n·k·d) with a running minimum; partitioned above ``work_limit`` (see kmeanspp.py).
    """
    n, d = X.shape
    sq = sq_norms(X)
    first = int(rng.integers(n))
    d2 = sq_dist_to(X, sq, X[first]).astype(np.float64)
    taken = np.zeros(n, dtype=bool)
    taken[first] = True
    d2[first] = 0.0
    from detreduce.reducers._partition import n_partitions, partition_rows

    m = n_partitions(n, k, d, work_limit)
    parts = partition_rows(X, m, rng) if m > 1 else [np.arange(n)]
    blocks = [(p, X[p], sq[p], d2[p]) if len(parts) > 1 else (p, X, sq, d2) for p in parts]
    mass = np.array([b[3].sum() for b in blocks])
    block_of = np.empty(n, dtype=np.int64)
    local_of = np.empty(n, dtype=np.int64)
    for j, p in enumerate(parts):
        block_of[p] = j
        local_of[p] = np.arange(len(p))
    picks = [first]
    while len(picks) < k:
        total = mass.sum()
        if total <= 0:  # only duplicates of kept rows remain: uniform among the rest
            g = int(rng.choice(np.flatnonzero(~taken)))
            j, i = int(block_of[g]), int(local_of[g])
        else:
            cum_mass = np.cumsum(mass)
            j = int(np.searchsorted(cum_mass, rng.random() * cum_mass[-1], "right"))
            cum = np.cumsum(blocks[j][3])
            i = int(np.searchsorted(cum, rng.random() * cum[-1], "right"))
        part, Xj, sqj, d2j = blocks[j]
        g = int(part[i])
        picks.append(g)
        taken[g] = True
        np.minimum(d2j, sq_dist_to(Xj, sqj, Xj[i]), out=d2j)
        d2j[i] = 0.0
        mass[j] = d2j.sum()
    if len(parts) > 1:
        for part, _, _, d2j in blocks:
            d2[part] = d2j
    return np.asarray(picks, dtype=np.int64), d2


def kmeans(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    niter: int = 10,
    sample_per_centroid: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means: ``(centroids (k, d), labels (n,))``, k-means++ init then :func:`lloyd`.

    ``sample_per_centroid`` fits on at most that many rows per centroid (a seeded sample),
    then assigns every row. O(niter·n·k·d).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    if k >= n:
        return X.copy(), np.arange(n, dtype=np.int64)
    if k == 1:
        return X.mean(axis=0, keepdims=True), np.zeros(n, dtype=np.int64)
    train = X
    if sample_per_centroid and n > k * sample_per_centroid:
        train = X[np.sort(rng.choice(n, k * sample_per_centroid, replace=False))]
    C, labels = lloyd(train, train[d2_sampling(train, k, rng)[0]], niter)
    if train is not X:
        labels = assign(X, C)[0]
    return C, labels


def kmeans_large(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    niter: int,
    work_limit: float,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means with k centroids, two-level when ``niter·n·k·d > work_limit`` (module doc)."""
    from detreduce.reducers._partition import n_partitions, partition_rows

    n, d = X.shape
    m = min(k, n_partitions(n, k, d * niter, work_limit))
    if m <= 1:
        return kmeans(X, k, rng, niter=niter)
    parts = partition_rows(X, m, rng)
    sizes = np.array([len(p) for p in parts])
    quotas = allocate(sizes, k, lower=np.ones(len(parts), dtype=np.int64))  # k >= m parts
    centroids = np.empty((k, d), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    offset = 0
    for part, q in zip(parts, quotas, strict=True):
        c, lab = kmeans(X[part], int(q), rng, niter=niter)
        centroids[offset : offset + q] = c
        labels[part] = lab + offset
        offset += int(q)
    return centroids, labels
