"""DOM: dominating-set selection on the ε-proximity graph.

Gonzalez-Diaz, Gutiérrez-Naranjo & Paluzo-Hidalgo (2022), "Topology-based representative
datasets to reduce neural network training resources": a subset is ε-representative
when every row lies within ε of a kept row, i.e. the kept rows dominate the graph that
joins rows closer than ε. Their greedy (the reference's ``dominating_dataset``) visits
rows in random order and keeps any row not yet covered, covering its ε-ball: a maximal
ε-independent set, which is dominating.

The budget, not ε, is what users give, so ε is chosen from the data: a binary search
over the graph's edge lengths finds the smallest ε whose dominating set fits the budget
(the reference bisects ε the same way but allows a 1 % miss). The graph is the
symmetrised kNN graph (:mod:`._neighbors`, faiss) of degree ``n_neighbors``, edges
longer than ε dropped: one neighbour query, then O(n·K) per ε tried. The rest of the
budget goes to the rows farthest from their dominator (the most weakly covered); when
even the largest ε leaves more dominators than the budget (very small budgets: a ball
holds at most K + 1 rows), the dominators covering the most rows are kept.

Scores: each row's distance to the kept row that dominates it (0 for dominators).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from detreduce.config import default
from detreduce.reducers._neighbors import knn, symmetric_graph
from detreduce.reducers._params import check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

log = logging.getLogger("detreduce")
_D = default("reducers.dom")


def greedy_dominating(
    indptr: np.ndarray,
    indices: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    visit: list[int],
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Random-order greedy dominating set; each row's ε-neighbours are its first ``counts``.

    Returns ``(dominators, owner, dist)``: the kept rows in pick order, and for every row
    the dominator covering it and the distance to it.
    """
    n = len(counts)
    owner = np.full(n, -1, dtype=np.int64)
    dist = np.zeros(n, dtype=np.float32)
    covered = np.zeros(n, dtype=bool)
    dominators: list[int] = []
    starts = indptr[:-1].tolist()
    ends = (indptr[:-1] + counts).tolist()
    for v in visit:
        if covered[v]:
            continue
        dominators.append(v)
        covered[v] = True
        owner[v] = v
        nb = indices[starts[v] : ends[v]]
        fresh = ~covered[nb]
        if fresh.any():
            new = nb[fresh]
            covered[new] = True
            owner[new] = v
            dist[new] = weights[starts[v] : ends[v]][fresh]
    return dominators, owner, dist


@register("dominating", "dominating_set")
class DOMReducer(GroupwiseReducer):
    """Greedy ε-dominating set, ε searched so the set fits the budget, then topped up."""

    name = "dom"
    summary = "dominating set of the ε-proximity graph (ε searched to fit the budget)"
    reference = "Gonzalez-Diaz, Gutierrez-Naranjo & Paluzo-Hidalgo 2022; Perera-Lago et al. 2024, arXiv 2403.15150"

    def __init__(self, n_neighbors: int | str = _D["n_neighbors"]):
        self.n_neighbors = n_neighbors

    def _check(self):
        check_int(self.name, "n_neighbors", self.n_neighbors, low=1, allow=("auto",))

    def _degree(self, n: int, k: int) -> int:
        if self.n_neighbors == "auto":
            return int(np.clip(math.ceil(3 * n / k), 16, 64))
        return int(self.n_neighbors)

    def _select_group(self, X, k, rng):
        n = len(X)
        if k >= n:
            return rng.permutation(n), np.zeros(n, dtype=np.float32)
        dist, idx = knn(X, self._degree(n, k), rng)
        indptr, indices, weights = symmetric_graph(dist, idx)
        visit = rng.permutation(n).tolist()

        def run(eps: float):
            c = np.concatenate([[0], np.cumsum(weights <= eps)])
            counts = c[indptr[1:]] - c[indptr[:-1]]
            return greedy_dominating(indptr, indices, counts, weights, visit)

        cand = np.unique(weights)
        best = run(float(cand[-1])) if len(cand) else run(0.0)
        if len(best[0]) <= k and len(cand):
            lo, hi = -1, len(cand) - 1  # run(cand[hi]) fits; find the smallest that fits
            while hi - lo > 1:
                mid = (lo + hi) // 2
                res = run(float(cand[mid]))
                if len(res[0]) <= k:
                    hi, best = mid, res
                else:
                    lo = mid
            log.debug("dom: eps=%.4g gives %d dominators for k=%d", cand[hi], len(best[0]), k)
        dominators, owner, dcov = best
        dom = np.asarray(dominators, dtype=np.int64)
        cover = np.bincount(owner, minlength=n)[dom]
        dom = dom[np.argsort(-cover, kind="stable")]
        if len(dom) >= k:
            return dom[:k], dcov
        rest = np.setdiff1d(np.arange(n), dom)
        tie = rng.random(n)
        fill = rest[np.lexsort((tie[rest], -dcov[rest]))][: k - len(dom)]
        return np.concatenate([dom, fill]), dcov
