"""SRS: stratified random sampling, the seed paper's statistical baseline.

Perera-Lago et al. (2024) draw ``fraction`` of each class at random; the reference code
fixes ``random_state=0``, so every "random" run picked the same rows. Here the seed is
honoured, and each stratum gets a share of the budget proportional to its size
(largest remainder, exact total). Without groups this is uniform random sampling. O(n).
"""

from __future__ import annotations

from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register


@register("stratified", "stratified_random")
class SRSReducer(GroupwiseReducer):
    """Seeded random sample of each stratum, quotas proportional to stratum sizes."""

    name = "srs"
    summary = "stratified random sampling (seeded; per-stratum quotas)"
    reference = "Perera-Lago et al. 2024, arXiv 2403.15150 (SRS)"
    baseline = "stratified random"
    uses_features = False

    def _select_group(self, X, k, rng):
        return rng.permutation(len(X))[:k], None
