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
from threadpoolctl import threadpool_limits

from detreduce.reducers._linalg import pairwise_sq, sq_dist_to, sq_norms


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
    with threadpool_limits(1, user_api="blas"):
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
    niter: int = 20,
    sample_per_centroid: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means: ``(centroids (k, d), labels (n,))``. O(niter·n·k·d).

    Initialised by k-means++ seeding (distinct rows, seeded); faiss re-seeds empty
    clusters by splitting large ones. ``sample_per_centroid`` trains on at most that many
    rows per centroid (a seeded sample), then assigns every row.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    if k >= n:
        return X.copy(), np.arange(n, dtype=np.int64)
    if k == 1:
        return X.mean(axis=0, keepdims=True), np.zeros(n, dtype=np.int64)
    train = X
    if sample_per_centroid and n > k * sample_per_centroid:
        train = X[np.sort(rng.choice(n, k * sample_per_centroid, replace=False))]
    init = train[d2_sampling(train, k, rng)[0]]
    seed = int(rng.integers(2**31 - 1))
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        from sklearn.cluster import KMeans

        km = KMeans(k, init=init, n_init=1, max_iter=niter, random_state=seed).fit(train)
        return km.cluster_centers_.astype(np.float32), _assign(X, km.cluster_centers_)[0]
    km = faiss.Kmeans(
        d,
        k,
        niter=niter,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # no stderr warning for small n/k
        max_points_per_centroid=len(train),  # no subsampling inside faiss
    )
    km.train(train, init_centroids=init)
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
