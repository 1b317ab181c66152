"""CLC: clustering centroids, done as the seed paper intends.

Perera-Lago et al. (2024) run k-means with k = the budget per class and keep the
centroids. The reference returns the synthetic centroids (not rows of the dataset, so
no image can be kept) after one k-means iteration. Here: Lloyd's k-means (k-means++
init, seeded, up to ``niter`` iterations) with k = the stratum's quota, then each centroid keeps the
member of its cluster nearest to it: real rows, unique by construction (DREAM's
representative matching, Liu et al. 2023, is the same idea). A centroid left without
members (rare) takes the nearest row not yet kept. Order: clusters from largest to
smallest. O(niter·n·k·d); two-level k-means above ``work_limit`` (:mod:`._kmeans`).

Scores: each row's Euclidean distance to its cluster centroid.
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._kmeans import kmeans_large
from detreduce.reducers._linalg import paired_sq_dist, pairwise_sq
from detreduce.reducers._params import check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.clc")


def representatives(
    X: np.ndarray, centroids: np.ndarray, labels: np.ndarray, key: np.ndarray
) -> np.ndarray:
    """One row per centroid: the member with the smallest ``key``; clusters largest first.

    A centroid without members takes the row not yet chosen nearest to it.
    """
    k = len(centroids)
    order = np.lexsort((key, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    rep = np.full(k, -1, dtype=np.int64)
    rep[labels[order][first]] = order[first]
    sizes = np.bincount(labels, minlength=k)
    taken = np.zeros(len(X), dtype=bool)
    taken[rep[rep >= 0]] = True
    for c in np.flatnonzero(rep < 0):
        d = pairwise_sq(centroids[c : c + 1], X)[0]
        d[taken] = np.inf
        rep[c] = int(np.argmin(d))
        taken[rep[c]] = True
    return rep[np.argsort(-sizes, kind="stable")]


@register("clustering_centroids", "kmeans")
class CLCReducer(GroupwiseReducer):
    """k-means per stratum with k = quota; keeps the real row nearest each centroid."""

    name = "clc"
    summary = "k-means with k = budget, keep the real row nearest each centroid"
    reference = "Perera-Lago et al. 2024, arXiv 2403.15150 (CLC)"

    def __init__(self, niter: int = _D["niter"], work_limit: float = _D["work_limit"]):
        self.niter = niter
        self.work_limit = work_limit

    def _check(self):
        check_int(self.name, "niter", self.niter, low=1)
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        centroids, labels = kmeans_large(
            X, k, rng, niter=int(self.niter), work_limit=float(self.work_limit)
        )
        dist = np.sqrt(paired_sq_dist(X, centroids, labels))
        return representatives(X, centroids, labels, dist), dist
