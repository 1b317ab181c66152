"""VQ: select by the codes of a vector-quantisation codebook (Soricelli 2025, "Improving
computational efficiency via tiny machine learning data-centric methods", thesis: prune
with a learned codebook so that training sees every mode of the data, not its repeats).

The codebook is a k-means codebook (k-means++ init, Lloyd, seeded, two-level above
``work_limit``; :mod:`._kmeans`) with ``codes`` code vectors per stratum. Why k-means and
not a trained VQ layer with a commitment loss: on fixed embeddings the VQ objective
(squared distance of every row to its code, the commitment term of van den Oord et al.
2017) *is* the k-means objective, and a VQ layer trained by gradient descent is online
k-means that reaches the same kind of minimum more slowly and less reproducibly; Lloyd
is exact per step, deterministic for a seed and O(niter·n·codes·d).

Each code's budget is a tempered share of its population ``pop``: ``∝ pop**temperature``,
capped at ``pop`` (water-filling; the capped surplus goes to the other codes; integers by
largest remainder, ties to the lower code index). ``temperature`` 1 keeps codes in
proportion (a stratified sample over codes), 0 gives every code the same count (rare
modes as many images as common ones), the default 0.5 sits between: common, redundant
codes are thinned most, rare codes keep more than their share. Within a code the rows
nearest its code vector are kept first. Codes are interleaved so every prefix of the
order is close to the code shares. ``codes: auto`` = ``ceil(sqrt(n))`` per stratum,
at most the stratum's quota (Soricelli's codebooks are small against the data).

Scores: each row's Euclidean distance to its code vector.
"""

from __future__ import annotations

import math

import numpy as np

from detreduce.config import default
from detreduce.reducers._kmeans import kmeans_large
from detreduce.reducers._linalg import paired_sq_dist
from detreduce.reducers._params import check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer, interleave
from detreduce.reducers.base import register

_D = default("reducers.vq")


def tempered_quotas(population: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """Integer quotas summing to ``k``, ``∝ population**temperature``, each ``<= population``.

    Water-filling: codes whose share would exceed their population are filled and the rest
    of the budget is shared again among the others; then floors plus the largest
    remainders (ties to the lower index). O(C²) worst case for C codes (C is small).
    """
    pop = np.asarray(population, dtype=np.int64)
    if not 0 <= k <= int(pop.sum()):
        raise ValueError(f"budget {k} outside [0, {int(pop.sum())}]")
    weight = np.where(pop > 0, pop.astype(np.float64) ** temperature, 0.0)
    share = np.zeros(len(pop))
    open_ = pop > 0
    while True:
        room = k - pop[~open_ & (pop > 0)].sum()
        share = np.where(open_, room * weight / max(weight[open_].sum(), 1e-300), pop)
        full = open_ & (share >= pop)
        if not full.any():
            break
        open_ &= ~full
    quota = np.minimum(np.floor(share + 1e-9).astype(np.int64), pop)
    missing = k - int(quota.sum())
    if missing > 0:
        cand = np.flatnonzero(quota < pop)
        rem = share[cand] - quota[cand]
        quota[cand[np.lexsort((cand, -rem))[:missing]]] += 1
    return quota


@register("vector_quantization", "codebook")
class VQReducer(GroupwiseReducer):
    """k-means codebook per stratum; each code keeps a tempered share, nearest first."""

    name = "vq"
    summary = "vector-quantisation codebook: each code keeps a population-tempered share"
    reference = "Soricelli 2025 (thesis, VQ data pruning); van den Oord et al. 2017 (VQ)"

    def __init__(
        self,
        codes: int | str = _D["codes"],
        temperature: float = _D["temperature"],
        niter: int = _D["niter"],
        work_limit: float = _D["work_limit"],
    ):
        self.codes = codes
        self.temperature = temperature
        self.niter = niter
        self.work_limit = work_limit

    def _check(self):
        check_int(self.name, "codes", self.codes, low=1, allow=("auto",))
        check_float(self.name, "temperature", self.temperature, low=0, high=1)
        check_int(self.name, "niter", self.niter, low=1)
        check_float(self.name, "work_limit", self.work_limit, low=0, low_open=True)

    def n_codes(self, n: int, k: int) -> int:
        """Codebook size for ``n`` rows and quota ``k`` (module docstring)."""
        wanted = math.ceil(math.sqrt(n)) if self.codes == "auto" else int(self.codes)
        return max(1, min(wanted, k, n))

    def _select_group(self, X, k, rng):
        codebook, code = kmeans_large(
            X,
            self.n_codes(len(X), k),
            rng,
            niter=int(self.niter),
            work_limit=float(self.work_limit),
        )
        dist = np.sqrt(paired_sq_dist(X, codebook, code))
        population = np.bincount(code, minlength=len(codebook))
        quota = tempered_quotas(population, k, float(self.temperature))
        order = np.lexsort((np.arange(len(X)), dist, code))  # by code, nearest first
        starts = np.concatenate([[0], np.cumsum(population)[:-1]])
        picks = [order[s : s + q] for s, q in zip(starts, quota, strict=True)]
        return interleave(picks), dist
