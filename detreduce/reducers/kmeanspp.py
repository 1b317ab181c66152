"""k-means++ seeding as a diversity sampler (Arthur & Vassilvitskii 2007).

The first row is drawn uniformly (seeded); each next row is drawn with probability
proportional to its squared distance to the rows already drawn (D² sampling). Unlike
farthest-point, outliers are not guaranteed picks: diversity with density in the mix.
A running minimum-distance vector gives O(n·k·d); above ``work_limit`` the rows are
split into local partitions (:mod:`._partition`): a draw first picks a partition in
proportion to its D² mass, then a row inside it, and only that partition is updated.

Scores: each row's distance to the kept set (0 for kept rows).
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from detreduce.config import default
from detreduce.reducers._linalg import sq_dist_to, sq_norms
from detreduce.reducers._params import check_float
from detreduce.reducers._partition import n_partitions, partition_rows
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.kmeanspp")


def d2_sampling(
    X: np.ndarray, k: int, rng: np.random.Generator, work_limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding of ``k`` distinct rows: ``(picks in order, final squared distances)``."""
    n, d = X.shape
    sq = sq_norms(X)
    first = int(rng.integers(n))
    d2 = sq_dist_to(X, sq, X[first]).astype(np.float64)
    taken = np.zeros(n, dtype=bool)
    taken[first] = True
    d2[first] = 0.0
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


@register("kmeans++", "kmeans_pp", "kmeanspp_seeding")
class KMeansPPReducer(GroupwiseReducer):
    """D² sampling (k-means++ seeding) per stratum."""

    name = "kmeanspp"
    summary = "k-means++ seeding (D² sampling) as a diversity sampler"

    def __init__(self, work_limit: float = _D["work_limit"]):
        self.work_limit = work_limit

    def _check(self):
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        picks, d2 = d2_sampling(X, k, rng, float(self.work_limit))
        return picks, np.sqrt(np.maximum(d2, 0.0))
