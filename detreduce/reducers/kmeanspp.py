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

from detreduce.config import default
from detreduce.reducers._kmeans import d2_sampling
from detreduce.reducers._params import check_float
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.kmeanspp")


@register("kmeans++", "kmeans_pp", "kmeanspp_seeding")
class KMeansPPReducer(GroupwiseReducer):
    """D² sampling (k-means++ seeding) per stratum."""

    name = "kmeanspp"
    summary = "k-means++ seeding (D² sampling) as a diversity sampler"
    reference = "Arthur & Vassilvitskii 2007"

    def __init__(self, work_limit: float = _D["work_limit"]):
        self.work_limit = work_limit

    def _check(self):
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        picks, d2 = d2_sampling(X, k, rng, float(self.work_limit))
        return picks, np.sqrt(np.maximum(d2, 0.0))
