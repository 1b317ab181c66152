"""Herding: greedy mean matching (Welling 2009, "Herding dynamical weights to learn";
the greedy form of Rebuffi et al. 2017, iCaRL, used to pick exemplars).

Each step keeps the row that brings the mean of the kept rows closest to the mean of
all rows: ``argmin_x ||t·μ - s - x||`` with ``s`` the sum of the ``t - 1`` rows kept so
far, i.e. ``argmax_x 2⟨x, tμ - s⟩ - ||x||²``. The running ``⟨x, s⟩`` vector is updated by
one GEMV per step: O(n·k·d) time, O(n) extra memory. Rows are L2-normalised first when
``normalize`` (as iCaRL). Above ``work_limit`` the rows are split into local partitions
(:mod:`._partition`) and each partition herds its own mean with a quota proportional to
its size; the merged mean still matches, and the distribution more closely.

Scores: none (the order is the output).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.quotas import allocate
from detreduce.reducers._linalg import sq_norms
from detreduce.reducers._params import check_bool, check_float
from detreduce.reducers._partition import n_partitions, partition_rows
from detreduce.reducers._strata import GroupwiseReducer, interleave
from detreduce.reducers.base import register
from detreduce.reducers.kcenter import l2_normalize

_D = default("reducers.herding")


def herd(X: np.ndarray, k: int) -> np.ndarray:
    """Greedy mean matching of ``k`` distinct rows of ``X`` (pick order)."""
    n = len(X)
    mu = X.mean(axis=0)
    x_mu = X @ mu
    sq = sq_norms(X)
    x_s = np.zeros(n, dtype=np.float32)
    taken = np.zeros(n, dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    for t in range(1, k + 1):
        score = 2.0 * (t * x_mu - x_s) - sq
        score[taken] = -np.inf
        i = int(np.argmax(score))
        picks[t - 1] = i
        taken[i] = True
        x_s += X @ X[i]
    return picks


@register("icarl_herding", "mean_matching")
class HerdingReducer(GroupwiseReducer):
    """Greedy herding: the kept rows' mean tracks the stratum mean at every prefix."""

    name = "herding"
    summary = "herding: greedy mean matching (Welling 2009; iCaRL exemplars)"
    reference = "Welling 2009; Rebuffi et al. 2017 (iCaRL)"

    def __init__(self, normalize: bool = _D["normalize"], work_limit: float = _D["work_limit"]):
        self.normalize = normalize
        self.work_limit = work_limit

    def _check(self):
        check_bool(self.name, "normalize", self.normalize)
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        Z = l2_normalize(X) if self.normalize else X
        n, d = Z.shape
        m = n_partitions(n, k, d, float(self.work_limit))
        if m <= 1:
            return herd(Z, k), None
        parts = partition_rows(Z, m, rng)
        sizes = np.array([len(p) for p in parts])
        lower = np.ones(len(parts), dtype=np.int64) if k >= len(parts) else None
        quotas = allocate(sizes, k, lower)  # every partition herds when the budget allows
        orders = [p[herd(Z[p], int(q))] for p, q in zip(parts, quotas, strict=True) if q]
        return interleave(orders), None
