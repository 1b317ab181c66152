"""k-center greedy (Sener & Savarese 2018, "Active learning for convolutional neural
networks: a core-set approach").

The core-set that minimises the largest distance of any row to its nearest kept row is
NP-hard; the greedy farthest-first traversal is a 2-approximation. Differences from MMS,
which shares the traversal (:mod:`._fps`): the geometry is cosine by default (rows
L2-normalised first, as embeddings are usually compared) and the start is the row
nearest the mean (deterministic, never an outlier). O(n·k·d); partitioned above
``work_limit``.

Scores: each row's distance to the kept set (0 for kept rows).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._fps import farthest_first
from detreduce.reducers._linalg import sq_dist_to, sq_norms
from detreduce.reducers._params import check_choice, check_float
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.kcenter")


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero); a new array."""
    norms = np.sqrt(sq_norms(X))
    return X / np.where(norms > 0, norms, 1.0)[:, None]


@register("k_center", "kcenter_greedy", "coreset")
class KCenterReducer(GroupwiseReducer):
    """Greedy k-center core-set, cosine geometry, medoid start."""

    name = "kcenter"
    summary = "k-center greedy core-set (Sener & Savarese 2018)"
    reference = "Sener & Savarese 2018 (ICLR)"

    def __init__(
        self,
        metric: str = _D["metric"],
        start: str = _D["start"],
        work_limit: float = _D["work_limit"],
    ):
        self.metric = metric
        self.start = start
        self.work_limit = work_limit

    def _check(self):
        check_choice(self.name, "metric", self.metric, ("cosine", "euclidean"))
        check_choice(self.name, "start", self.start, ("medoid", "random"))
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        Z = l2_normalize(X) if self.metric == "cosine" else X
        if self.start == "medoid":
            first = int(np.argmin(sq_dist_to(Z, sq_norms(Z), Z.mean(axis=0))))
        else:
            first = int(rng.integers(len(Z)))
        t = farthest_first(Z, k, rng, start=first, work_limit=float(self.work_limit))
        return t.order, t.mind
