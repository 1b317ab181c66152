"""MMS: max-min (farthest-point) selection, as in Perera-Lago et al. (2024).

Starting from a seeded random row, repeatedly keep the row whose distance to the kept
set is largest (Gonzalez 1985; the reference calls gudhi's
``choose_n_farthest_points``). A running minimum-distance vector makes it O(n·k·d)
time and O(n) extra memory; above ``work_limit`` multiply-adds the greedy runs on local
partitions (see :mod:`._fps`). Per stratum, quotas proportional to stratum sizes.

Scores: each row's Euclidean distance to the kept set (0 for kept rows).
"""

from __future__ import annotations

from detreduce.config import default
from detreduce.reducers._fps import farthest_first
from detreduce.reducers._params import check_float
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.mms")


@register("maxmin", "fps", "farthest_point")
class MMSReducer(GroupwiseReducer):
    """Farthest-point sampling from a seeded random start, Euclidean."""

    name = "mms"
    summary = "max-min / farthest-point selection (seeded start, running min distance)"
    reference = "Perera-Lago et al. 2024, arXiv 2403.15150 (MMS)"

    def __init__(self, work_limit: float = _D["work_limit"]):
        self.work_limit = work_limit

    def _check(self):
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def _select_group(self, X, k, rng):
        t = farthest_first(X, k, rng, work_limit=float(self.work_limit))
        return t.order, t.mind
