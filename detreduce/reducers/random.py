"""Seeded uniform random sampling: the baseline every method must beat."""

from __future__ import annotations

from detreduce.reducers.base import Reducer, ReducerResult, register


@register("uniform")
class RandomReducer(Reducer):
    """Uniform random sample without replacement, seeded. O(n)."""

    name = "random"
    summary = "uniform random sample of the train images (seeded)"
    reference = "uniform sampling without replacement"
    balanced = False
    baseline = "uniform, no balance"
    uses_features = False

    def _select(self, X, k, groups, rng):
        return ReducerResult(indices=rng.permutation(len(X))[:k])
