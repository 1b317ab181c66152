"""PHL: persistent-homology landmarks (Stolz, Tanner, Harrington & Nanda 2023,
"Outlier-robust subsampling techniques for persistent homology", JMLR).

Each row gets an outlier score: the largest persistence (death - birth, finite bars)
in the Vietoris-Rips diagram of its δ-neighbourhood (the rows within radius δ, the row
itself left out), over homology dimensions 0..``dimension`` (``scoring: multi``) or in
``dimension`` only (``restricted``). Rows with fewer than two neighbours in the ball are
"super outliers". ``representative`` landmarks keep low scores first (typical rows),
``vital`` landmarks high scores first (rows on topological features); super outliers
come last in both, in seeded random order.

The reference builds a KD-tree per row (O(n² log n)), and the seed paper's detection
script casts the radius to ``int`` (0 for embedding distances), so every row was a super
outlier and PHL was random. Here: one kNN query for all rows (:mod:`._neighbors`,
faiss), a data-driven radius (the ``radius_quantile`` quantile of the distances to the
``radius_k``-th neighbour, so about that share of rows have ``radius_k`` neighbours in
their ball), neighbourhoods truncated to the ``max_neighbors`` nearest, and the ripser
computations spread over ``n_jobs`` processes. O(n²·d) exact kNN (approximate above
~10k rows of d = 1280) plus n ripser calls on at most ``max_neighbors`` points.

Scores: the outlier score (NaN for super outliers).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._linalg import pairwise_sq
from detreduce.reducers._neighbors import knn
from detreduce.reducers._params import check_choice, check_float, check_int
from detreduce.reducers._strata import GroupwiseReducer
from detreduce.reducers.base import register

_D = default("reducers.phl")


def max_persistence(diagrams: list[np.ndarray], dims: range) -> float:
    """Largest finite bar length over the diagrams of ``dims`` (0 if none)."""
    best = 0.0
    for dim in dims:
        bars = diagrams[dim]
        if len(bars):
            finite = bars[np.isfinite(bars[:, 1])]
            if len(finite):
                best = max(best, float((finite[:, 1] - finite[:, 0]).max()))
    return best


def persistence_scores(
    X: np.ndarray, nbrs: np.ndarray, counts: np.ndarray, dimension: int, restricted: bool
) -> np.ndarray:
    """Outlier score of each row whose neighbourhood is ``nbrs[i, :counts[i]]``."""
    from ripser import ripser

    dims = range(dimension, dimension + 1) if restricted else range(dimension + 1)
    out = np.zeros(len(nbrs))
    for i in range(len(nbrs)):
        P = X[nbrs[i, : counts[i]]]
        D = np.sqrt(pairwise_sq(P, P)).astype(np.float64)
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0.0)
        out[i] = max_persistence(ripser(D, maxdim=dimension, distance_matrix=True)["dgms"], dims)
    return out


@register("ph_landmarks", "persistent_homology")
class PHLReducer(GroupwiseReducer):
    """Persistent-homology outlier scores; representative (low first) or vital (high first)."""

    name = "phl"
    summary = "persistent-homology landmarks (representative: low outlier score first)"
    reference = (
        "Stolz, Tanner, Harrington & Nanda 2023 (JMLR); Perera-Lago et al. 2024, arXiv 2403.15150"
    )

    def __init__(
        self,
        landmark_type: str = _D["landmark_type"],
        radius: float | str = _D["radius"],
        radius_quantile: float = _D["radius_quantile"],
        radius_k: int = _D["radius_k"],
        max_neighbors: int = _D["max_neighbors"],
        dimension: int = _D["dimension"],
        scoring: str = _D["scoring"],
        n_jobs: int = _D["n_jobs"],
    ):
        self.landmark_type = landmark_type
        self.radius = radius
        self.radius_quantile = radius_quantile
        self.radius_k = radius_k
        self.max_neighbors = max_neighbors
        self.dimension = dimension
        self.scoring = scoring
        self.n_jobs = n_jobs

    def _check(self):
        check_choice(self.name, "landmark_type", self.landmark_type, ("representative", "vital"))
        check_float(self.name, "radius", self.radius, low=0, low_open=True, allow=("auto",))
        check_float(self.name, "radius_quantile", self.radius_quantile, low=0, high=1)
        check_int(self.name, "max_neighbors", self.max_neighbors, low=2)
        check_int(self.name, "radius_k", self.radius_k, low=1, high=self.max_neighbors)
        check_int(self.name, "dimension", self.dimension, low=0, high=2)
        check_choice(self.name, "scoring", self.scoring, ("multi", "restricted"))
        check_int(self.name, "n_jobs", self.n_jobs, low=1)

    def _scores(self, X, nbrs, counts, rows):
        restricted = self.scoring == "restricted"
        dim = int(self.dimension)
        if self.n_jobs == 1 or len(rows) < 1000:
            return persistence_scores(X, nbrs[rows], counts[rows], dim, restricted)
        from joblib import Parallel, delayed

        chunks = np.array_split(rows, 4 * int(self.n_jobs))
        parts = Parallel(n_jobs=int(self.n_jobs))(
            delayed(persistence_scores)(X, nbrs[c], counts[c], dim, restricted) for c in chunks
        )
        return np.concatenate(parts)

    def _select_group(self, X, k, rng):
        n = len(X)
        K = min(int(self.max_neighbors), n - 1)
        scores = np.full(n, np.nan)
        if K >= 2:
            dist, nbrs = knn(X, K, rng)
            if self.radius == "auto":
                col = min(int(self.radius_k), K) - 1
                radius = float(np.quantile(dist[:, col], float(self.radius_quantile)))
            else:
                radius = float(self.radius)
            counts = (dist <= radius).sum(axis=1)
            rows = np.flatnonzero(counts >= 2)
            if len(rows):
                scores[rows] = self._scores(X, nbrs, counts, rows)
        tie = rng.random(n)
        scored = np.flatnonzero(~np.isnan(scores))
        isolated = np.flatnonzero(np.isnan(scores))
        sign = 1.0 if self.landmark_type == "representative" else -1.0
        ranked = scored[np.lexsort((tie[scored], sign * scores[scored]))]
        last = isolated[np.argsort(tie[isolated])]
        return np.concatenate([ranked, last])[:k], scores
