"""NRMD: numerosity reduction by matrix decomposition (Ghojogh & Crowley 2019, "Instance
ranking and numerosity reduction using matrix decomposition and subspace learning").

Rows are ranked by how they sit in the principal directions of the data: with the
truncated SVD ``X ≈ U Σ Vᵀ`` and unit-norm rows ``x̂``, a row's score is
``Σ_i w_i · (-log max(|x̂ · v_i|, 0.001))`` with weights ``w_i ∝ 1 / σ_i``, and the
highest scores are kept first (the reference ``SR_MD.find_scores_and_sort`` with
``SVD_python``, uncentred as there). The reference takes the full SVD of the d × n
matrix; here a randomized SVD (Halko et al. 2011) of rank ``rank``, O(n·d·rank), per
stratum with proportional quotas (the seed paper's per-class variant).

Scores: the NRMD score (higher = kept earlier).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.extmath import randomized_svd

from detreduce.config import default
from detreduce.reducers._linalg import sq_norms
from detreduce.reducers._params import check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.nrmd")


def nrmd_scores(X: np.ndarray, rank: int, rng: np.random.Generator) -> np.ndarray:
    """Ghojogh-Crowley scores of the rows of ``X`` under a rank-``rank`` SVD."""
    n, d = X.shape
    r = min(rank, n, d)
    if r >= min(n, d) - 1 or min(n, d) <= 64:
        _, s, vt = np.linalg.svd(X.astype(np.float64), full_matrices=False)
        s, vt = s[:r], vt[:r]
    else:
        seed = int(rng.integers(2**31 - 1))
        _, s, vt = randomized_svd(X, r, n_iter=4, random_state=seed)
    keep = s > s.max() * 1e-10 if len(s) and s.max() > 0 else np.zeros(len(s), bool)
    if not keep.any():
        return np.zeros(n)
    s, vt = s[keep], vt[keep]
    w = (1.0 / s) / (1.0 / s).sum()
    norms = np.sqrt(sq_norms(X)).astype(np.float64)
    cos = np.abs(X @ vt.T.astype(np.float32)) / np.where(norms > 0, norms, 1.0)[:, None]
    return (-np.log(np.maximum(cos, 1e-3))) @ w


@register("matrix_decomposition")
class NRMDReducer(GroupwiseReducer):
    """Rank rows by their weight in a truncated SVD; keep the highest scores."""

    name = "nrmd"
    summary = "numerosity reduction by matrix decomposition (truncated-SVD ranking)"
    reference = "Ghojogh & Crowley 2019; Perera-Lago et al. 2024, arXiv 2403.15150"

    def __init__(self, rank: int = _D["rank"]):
        self.rank = rank

    def _check(self):
        check_int(self.name, "rank", self.rank, low=1)

    def _select_group(self, X, k, rng):
        scores = nrmd_scores(X, int(self.rank), rng)
        order = np.lexsort((rng.random(len(X)), -scores))
        return order[:k], scores
