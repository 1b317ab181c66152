"""Facility location by lazy greedy, as CRAIG selects coresets (Mirzasoleiman, Bilmes &
Leskovec 2020, "Coresets for data-efficient training of machine learning models").

``F(S) = Σ_i max_{j∈S} s_ij`` rewards a subset whose rows are similar to every row; it
is monotone submodular, so greedy gets within ``1 - 1/e`` of the optimum, and lazy
greedy (Minoux 1978) re-evaluates only the heap top. Similarities are Gaussian,
``s_ij = exp(-||x_i - x_j||² / 2σ²)`` (``s_ii = 1``), kept on the symmetrised kNN graph
(:mod:`._neighbors`, faiss) of degree ``n_neighbors``: O(n·K) memory instead of CRAIG's
dense n × n matrix, with similarities beyond the K-th neighbour taken as 0 (they are
``exp(-large)`` for a σ at the scale of kNN distances). σ defaults to the median kNN
distance. Per stratum with proportional quotas (CRAIG works per class).

Scores: each row's similarity to its most similar kept row (1 for kept rows).
"""

from __future__ import annotations

import heapq

import numpy as np

from detreduce.config import default
from detreduce.reducers._neighbors import knn, symmetric_graph
from detreduce.reducers._params import check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.facility_location")


def lazy_greedy(indptr: np.ndarray, indices: np.ndarray, sim: np.ndarray, k: int) -> tuple:
    """Lazy greedy facility location on a sparse symmetric similarity graph.

    Returns ``(picks, coverage)``: rows in pick order and each row's best similarity to them.
    """
    n = len(indptr) - 1
    cover = np.zeros(n)
    csum = np.concatenate([[0.0], np.cumsum(sim, dtype=np.float64)])
    gains = 1.0 + csum[indptr[1:]] - csum[indptr[:-1]]
    heap = [(-float(g), j) for j, g in enumerate(gains)]
    heapq.heapify(heap)
    taken = np.zeros(n, dtype=bool)
    picks: list[int] = []
    bounds = indptr.tolist()
    while len(picks) < k:
        _, j = heapq.heappop(heap)
        if taken[j]:
            continue
        a, b = bounds[j], bounds[j + 1]
        nb = indices[a:b]
        gain = max(0.0, 1.0 - cover[j]) + float((sim[a:b] - cover[nb]).clip(min=0.0).sum())
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, j))
            continue
        picks.append(j)
        taken[j] = True
        cover[j] = 1.0
        np.maximum.at(cover, nb, sim[a:b])
    return np.asarray(picks, dtype=np.int64), cover


def gaussian_similarity(w: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-w² / 2σ²)`` as float64, computed in place (one array of ``len(w)``)."""
    sim = w.astype(np.float64)
    np.square(sim, out=sim)
    np.negative(sim, out=sim)
    sim /= 2 * sigma**2
    return np.exp(sim, out=sim)


@register("facility", "craig")
class FacilityLocationReducer(GroupwiseReducer):
    """Lazy-greedy facility location on a sparse Gaussian kNN similarity graph."""

    name = "facility_location"
    summary = "facility location, lazy greedy on a kNN similarity graph (CRAIG)"
    reference = "CRAIG, Mirzasoleiman, Bilmes & Leskovec 2020 (ICML)"

    def __init__(self, n_neighbors: int = _D["n_neighbors"], sigma: float | str = _D["sigma"]):
        self.n_neighbors = n_neighbors
        self.sigma = sigma

    def _check(self):
        check_int(self.name, "n_neighbors", self.n_neighbors, low=1)
        check_float(self.name, "sigma", self.sigma, low=0, low_open=True, allow=("auto",))

    def _select_group(self, X, k, rng):
        n = len(X)
        if n == 1:
            return np.zeros(1, dtype=np.int64), np.ones(1)
        dist, idx = knn(X, int(self.n_neighbors), rng)
        if self.sigma == "auto":
            med = float(np.median(dist))
            sigma = med if med > 0 else 1.0
        else:
            sigma = float(self.sigma)
        indptr, indices, w = symmetric_graph(dist, idx)
        del dist, idx
        sim = gaussian_similarity(w, sigma)
        del w
        picks, cover = lazy_greedy(indptr, indices, sim, k)
        return picks, cover
