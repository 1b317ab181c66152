"""Near-duplicate removal, then a seeded random fill (FiftyOne's ``find_unique`` idea).

Rows closer than ``threshold`` are near-duplicates: cosine distance ``1 - cos`` by
default (rows L2-normalised, so the Euclidean threshold is ``sqrt(2·threshold)``), or
Euclidean. Each row's ``n_neighbors`` nearest rows are found with one kNN query
(:mod:`._neighbors`, faiss); candidate pairs found in an approximate (PCA) search are
re-checked with exact distances. Rows are visited in dataset order and a row is dropped
when an earlier *kept* row is within the threshold: of each duplicate pair the later one
goes, and a chain a ~ b ~ c with a and c apart keeps a and c.

Budget rule: if more unique rows remain than the budget, a seeded random sample of them
(deduplicated random sampling); if fewer, all of them, then the dropped rows farthest
from the kept row they duplicate (the least redundant first). O(n²·d) exact kNN
(approximate above ~10k rows of d = 1280) + O(n·K).

Scores: each row's distance to its nearest neighbour (in the chosen metric).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._linalg import paired_sq_dist
from detreduce.reducers._neighbors import knn
from detreduce.reducers._params import check_choice, check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register
from detreduce.reducers.kcenter import l2_normalize

_D = default("reducers.dedup")


def unique_rows(Z: np.ndarray, radius: float, dist: np.ndarray, idx: np.ndarray) -> tuple:
    """Keep-first deduplication from kNN lists: ``(kept mask, distance to the kept duplicate)``.

    Candidate pairs with a kNN distance below ``radius`` are re-checked exactly.
    """
    n = len(Z)
    src, col = np.nonzero(dist < radius)
    dst = idx[src, col]
    exact = np.sqrt(paired_sq_dist(Z, Z, dst, src)) if len(src) else np.zeros(0)
    ok = exact < radius
    a, b, w = src[ok], dst[ok], exact[ok]
    early, late = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((early, late))
    early, late, w = early[order], late[order], w[order]
    kept = np.ones(n, dtype=bool)
    dup_dist = np.full(n, np.inf)
    starts = np.searchsorted(late, np.arange(n), "left")
    ends = np.searchsorted(late, np.arange(n), "right")
    for j in np.unique(late).tolist():
        e = early[starts[j] : ends[j]]
        hit = kept[e]
        if hit.any():
            kept[j] = False
            dup_dist[j] = float(w[starts[j] : ends[j]][hit].min())
    return kept, dup_dist


@register("near_duplicates", "deduplicate", "find_unique")
class DedupReducer(GroupwiseReducer):
    """Drop the later row of each near-duplicate pair, then fill the budget (see module doc)."""

    name = "dedup"
    summary = "near-duplicate removal (drop the later of close pairs), then random fill"
    reference = "FiftyOne Brain find_unique; SemDeDup, Abbas et al. 2023"

    def __init__(
        self,
        threshold: float = _D["threshold"],
        metric: str = _D["metric"],
        n_neighbors: int = _D["n_neighbors"],
    ):
        self.threshold = threshold
        self.metric = metric
        self.n_neighbors = n_neighbors

    def _check(self):
        check_float(self.name, "threshold", self.threshold, low=0)
        check_choice(self.name, "metric", self.metric, ("cosine", "euclidean"))
        check_int(self.name, "n_neighbors", self.n_neighbors, low=1)

    def _select_group(self, X, k, rng):
        n = len(X)
        if n == 1:
            return np.zeros(1, dtype=np.int64), np.zeros(1)
        cosine = self.metric == "cosine"
        Z = l2_normalize(X) if cosine else X
        radius = float(np.sqrt(2 * self.threshold)) if cosine else float(self.threshold)
        dist, idx = knn(Z, int(self.n_neighbors), rng)
        kept, dup_dist = unique_rows(Z, radius, dist, idx)
        nearest = dist[:, 0].astype(np.float64)
        scores = nearest**2 / 2 if cosine else nearest
        unique = np.flatnonzero(kept)
        if len(unique) >= k:
            return rng.permutation(unique)[:k], scores
        dropped = np.flatnonzero(~kept)
        tie = rng.random(n)
        fill = dropped[np.lexsort((tie[dropped], -dup_dist[dropped]))]
        return np.concatenate([rng.permutation(unique), fill])[:k], scores
