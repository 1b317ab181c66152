"""DREAM: representative matching (Liu, Wang et al., ICCV 2023, "DREAM: Efficient
Dataset Distillation by Representative Matching"), as a selection method.

DREAM replaces the random real batch a distillation step matches against with
representative samples: the class's embeddings are split by k-means into ``n``
sub-clusters (``n`` = the matching batch, 128 by default in its code) and the real sample
nearest each sub-cluster centre is used; the clustering is redone every few iterations
as the network evolves, so over a run the matched set is the union of many rounds of
sub-cluster centres.

Here, per stratum (a class under balance, as DREAM works per class), rounds repeat until
the stratum's quota is met: each round draws a random pool of ``pool_factor · m`` rows among those
not yet kept, ``m = min(n_subclusters, ceil(remaining / pool_factor))`` (so a stratum
smaller than a pool still has ``pool_factor`` rows per sub-cluster), splits it into ``m``
sub-clusters (k-means++ init, Lloyd, seeded) and keeps the row nearest each centre,
largest sub-clusters first (the last round keeps only what the quota still needs).
Departures, and why: a static selection has no evolving network, so the fresh random
pool is what makes the rounds differ (DREAM's re-clustering with a changed network and
a new k-means init plays that role), and it bounds a round's cost at
O(niter · pool · n_subclusters · d) whatever the class size; rows kept in one round
leave the pool, so the union never repeats an image. Proportions: DREAM keeps the same
number of images per class and ``n_subclusters`` sub-clusters per class and round; the
per-class counts here are the balance quotas (proportional by default, ``--balance``
for others). Cost: O(k/n_subclusters · niter · pool · n_subclusters · d) = O(k · niter ·
pool_factor · n_subclusters · d) for quota k.

How it differs from ``clc``: clc runs one k-means with k = the whole quota over the whole
stratum and keeps one representative per cluster, O(niter·n·k·d). DREAM runs many small
k-means (``n_subclusters`` per round) over random pools and keeps their centres, so its
cost grows with the quota, not with n times the quota; and ``pool_factor`` sets where it
sits between the two: at 1 every pool row is kept (uniform random sampling), with the
pool the whole stratum and ``n_subclusters`` the quota it is clc. Both keep central
members of their clusters, and both give sparse regions (which form many small
sub-clusters) more than their share of the picks (measured in
``tests/test_reducers_distribution.py``).

Scores: the round in which each row was kept (0 first; NaN for rows not kept).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._kmeans import kmeans
from detreduce.reducers._params import check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register
from detreduce.reducers.clc import representatives

_D = default("reducers.dream")


@register("representative_matching")
class DREAMReducer(GroupwiseReducer):
    """Rounds of sub-cluster centres of random pools per stratum (DREAM)."""

    name = "dream"
    summary = "representative matching: sub-cluster centres of random pools, round after round"
    reference = "DREAM, Liu, Wang et al. 2023 (ICCV), arXiv 2302.14416"

    def __init__(
        self,
        n_subclusters: int = _D["n_subclusters"],
        pool_factor: int = _D["pool_factor"],
        niter: int = _D["niter"],
    ):
        self.n_subclusters = n_subclusters
        self.pool_factor = pool_factor
        self.niter = niter

    def _check(self):
        check_int(self.name, "n_subclusters", self.n_subclusters, low=1)
        check_int(self.name, "pool_factor", self.pool_factor, low=1)
        check_int(self.name, "niter", self.niter, low=1)

    def _select_group(self, X, k, rng):
        n = len(X)
        free = np.ones(n, dtype=bool)
        kept: list[np.ndarray] = []
        round_of = np.full(n, np.nan)
        need, rnd = k, 0
        sub = int(self.n_subclusters)
        while need > 0:
            candidates = np.flatnonzero(free)
            # m sub-clusters of a pool of pool_factor·m rows (fewer in a small stratum)
            m = min(sub, -(-len(candidates) // int(self.pool_factor)))
            size = min(len(candidates), int(self.pool_factor) * m)
            pool = rng.permutation(candidates)[:size]  # random order: ties stay random
            centres, labels = kmeans(X[pool], m, rng, niter=int(self.niter))
            dist = np.sqrt(((X[pool] - centres[labels]) ** 2).sum(axis=1))
            picks = pool[representatives(X[pool], centres, labels, dist)[:need]]
            kept.append(picks)
            free[picks] = False
            round_of[picks] = rnd
            need -= len(picks)
            rnd += 1
        return np.concatenate(kept), round_of
