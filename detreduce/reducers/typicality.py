"""Typicality + diversity: TypiClust (Hacohen, Dekel & Weinshall 2022, "Active learning
on a budget"), the combination Lightly's selection offers as its typicality strategy.

Diversity: the rows are split into k clusters (k = budget; k-means++ then Lloyd,
two-level above ``work_limit``, see :mod:`._kmeans`). Typicality: the inverse mean
distance to a row's ``n_neighbors`` nearest neighbours (kNN by faiss, one query). Each
cluster keeps its most typical row, largest clusters first; a cluster left empty takes
the nearest row not yet kept. Dense, representative rows spread over the whole space,
never outliers. O(n²·d) kNN (approximate above ~10k rows of d = 1280) + k-means.

Scores: typicality (higher = denser neighbourhood).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._kmeans import kmeans_large
from detreduce.reducers._neighbors import knn
from detreduce.reducers._params import check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register
from detreduce.reducers.clc import representatives

_D = default("reducers.typicality")


@register("typiclust", "typicality_diversity")
class TypicalityReducer(GroupwiseReducer):
    """Most typical row of each of k clusters (TypiClust)."""

    name = "typicality"
    summary = "typicality + diversity: most typical row of each of k clusters (TypiClust)"
    reference = "TypiClust, Hacohen, Dekel & Weinshall 2022 (ICML)"

    def __init__(
        self,
        n_neighbors: int = _D["n_neighbors"],
        niter: int = _D["niter"],
        work_limit: float = _D["work_limit"],
    ):
        self.n_neighbors = n_neighbors
        self.niter = niter
        self.work_limit = work_limit

    def _check(self):
        check_int(self.name, "n_neighbors", self.n_neighbors, low=1)
        check_int(self.name, "niter", self.niter, low=1)
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        n = len(X)
        if n == 1:
            return np.zeros(1, dtype=np.int64), np.ones(1)
        dist, _ = knn(X, int(self.n_neighbors), rng)
        typicality = 1.0 / (dist.mean(axis=1).astype(np.float64) + 1e-12)
        centroids, labels = kmeans_large(
            X, k, rng, niter=int(self.niter), work_limit=float(self.work_limit)
        )
        return representatives(X, centroids, labels, -typicality), typicality
