"""PSA: principal sample analysis (Ghojogh, Karray & Crowley 2019, "Principal sample
analysis for data reduction"; reference code bghojogh/Principal-Sample-Analysis, the
"simplified" scatters the seed paper runs).

Per class (stratum), PSA ranks rows in two stages:

1. *Group ranking* (RANSAC): ``ransac_iter`` random groups of ``group_size`` rows are
   scored by ``between · variance · cos(β_all, β_group) / within``: the group's
   scatter, its weighted distance to the other classes, its weighted within-group
   scatter, and how well a linear regression of one coordinate on the others fitted on
   the group agrees with the one fitted on the whole class (best coordinate). The best
   group holds the *principal samples*.
2. *Individual ranking*: principal samples by ``between(x) / within_class(x)``; the other
   rows after them by ``between(x) / Σ_r ω_r ||x - q_r||²``, their rank-weighted scatter
   around the ranked principal samples (``ω_r ∝ m - r``). The reference scores these
   with the *own* class in place of the other classes, which makes every score equal
   (a bug); the other classes are used here, as for the principal samples.

Scatters are weighted by ``(cos(x, class mean) + 1) / 2`` as in the reference, and every
weighted sum of squared distances is computed from per-class moments in O(n·p) instead
of the reference's per-pair loops over d × d outer products. The reference needs
``group_size = d`` rows per group for its d-dimensional regressions; here everything is
computed in a ``n_components``-dimensional PCA projection (raw rows projected, so angles
to the origin are kept). Between-class terms need groups; without them there is one
class and ``between = 1``. Joint over strata, quotas per stratum
(:func:`._strata.group_quotas`: proportional, or the caller's ``quotas``).

Scores: none (ranks are per class).
"""

from __future__ import annotations

import numpy as np

from detreduce.config import default
from detreduce.reducers._linalg import pca
from detreduce.reducers._params import check_int
from detreduce.reducers._strata import (
    JointReducer,
    interleave,
)
from detreduce.reducers.base import ReducerResult, register

_D = default("reducers.psa")
RIDGE = 1e-4  # the reference's lambda_for_singularity for group regressions


def cos_weights(Z: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``(cos(z, ref) + 1) / 2`` per row (the reference's ``calculate_weight``)."""
    nz = np.linalg.norm(Z, axis=1) * np.linalg.norm(ref)
    cos = np.where(nz > 0, Z @ ref / np.where(nz > 0, nz, 1.0), 0.0)
    return (cos + 1.0) / 2.0


class Moments:
    """Weighted moments ``(Σw, Σw·z, Σw·||z||²)`` to evaluate ``Σ_i w_i ||y - z_i||²`` in O(p)."""

    def __init__(self, Z: np.ndarray, w: np.ndarray):
        self.w = float(w.sum())
        self.s1 = w @ Z
        self.s2 = float(w @ np.einsum("ij,ij->i", Z, Z))

    def __add__(self, other: Moments) -> Moments:
        out = object.__new__(Moments)
        out.w, out.s1, out.s2 = self.w + other.w, self.s1 + other.s1, self.s2 + other.s2
        return out

    def scatter(self, Y: np.ndarray) -> np.ndarray:
        """``Σ_i w_i ||y - z_i||²`` for each row ``y`` of ``Y``."""
        Y = np.atleast_2d(Y)
        return np.maximum(self.w * np.einsum("ij,ij->i", Y, Y) - 2 * Y @ self.s1 + self.s2, 0.0)


def regression_betas(Z: np.ndarray, ridge: float) -> np.ndarray:
    """Coefficients (intercept first) regressing each coordinate j < p-1 on the others.

    One inverse for all of them: with ``P = (AᵀA + ridge·I)⁻¹``, ``A = [1, Z]``, the ridge
    regression of column t on the other columns is ``-P[others, t] / P[t, t]``.
    """
    n, p = Z.shape
    A = np.hstack([np.ones((n, 1)), Z])
    G = A.T @ A
    lam = ridge if ridge > 0 else 1e-10 * max(float(np.trace(G)) / (p + 1), 1e-12)
    P = np.linalg.pinv(G + lam * np.eye(p + 1), hermitian=True)
    betas = np.empty((p - 1, p))
    for j in range(p - 1):
        t = j + 1
        others = np.delete(np.arange(p + 1), t)
        betas[j] = -P[others, t] / P[t, t]
    return betas


def rank_class(
    Z: np.ndarray, others: Moments | None, m: int, iters: int, rng: np.random.Generator
) -> np.ndarray:
    """PSA order of the rows of one class ``Z`` (n_c × p)."""
    n, p = Z.shape
    if n <= 2:
        return np.arange(n)
    m = int(np.clip(m, 2, n))
    mean_c = Z.mean(axis=0)
    own = Moments(Z, cos_weights(Z, mean_c))

    def between(Y: np.ndarray) -> np.ndarray:
        return others.scatter(Y) if others is not None else np.ones(len(np.atleast_2d(Y)))

    beta_all = regression_betas(Z, 0.0) if p > 1 else None
    best, best_group = -np.inf, None
    for _ in range(iters):
        G = rng.choice(n, m, replace=False)
        ZG = Z[G]
        mean_g = ZG.mean(axis=0)
        variance = float(((ZG - mean_g) ** 2).sum())
        w = cos_weights(ZG, mean_g)
        within = float(w @ Moments(ZG, np.ones(m)).scatter(ZG))  # Σ_j w_j Σ_i ||x_i - x_j||²
        if beta_all is not None:
            beta_g = regression_betas(ZG, RIDGE)
            num = (beta_all * beta_g).sum(axis=1)
            den = np.linalg.norm(beta_all, axis=1) * np.linalg.norm(beta_g, axis=1)
            cos = float(np.max(np.where(den > 0, num / np.where(den > 0, den, 1), 0)))
        else:
            cos = 1.0
        score = float(between(mean_g)[0]) * variance * cos / max(within, 1e-12)
        if score > best or best_group is None:
            best, best_group = score, G
    G = best_group
    ind = between(Z[G]) / np.maximum(own.scatter(Z[G]), 1e-12)
    ranked = G[np.lexsort((G, -ind))]
    rest = np.setdiff1d(np.arange(n), ranked)
    omega = (m - np.arange(m)) / (m * (m + 1) / 2)
    around = Moments(Z[ranked], omega).scatter(Z[rest])
    rest_score = between(Z[rest]) / np.maximum(around, 1e-12)
    return np.concatenate([ranked, rest[np.lexsort((rest, -rest_score))]])


@register("principal_sample_analysis")
class PSAReducer(JointReducer):
    """Principal samples (RANSAC group ranking) first, then the rest by scatter ratio."""

    name = "psa"
    summary = "principal sample analysis (RANSAC group + scatter-ratio ranking)"
    reference = "Ghojogh, Karray & Crowley 2019; Perera-Lago et al. 2024, arXiv 2403.15150"

    def __init__(
        self,
        n_components: int = _D["n_components"],
        group_size: int | str = _D["group_size"],
        ransac_iter: int = _D["ransac_iter"],
    ):
        self.n_components = n_components
        self.group_size = group_size
        self.ransac_iter = ransac_iter

    def _check(self):
        check_int(self.name, "n_components", self.n_components, low=1)
        check_int(self.name, "group_size", self.group_size, low=2, allow=("auto",))
        check_int(self.name, "ransac_iter", self.ransac_iter, low=1)

    def _select_joint(self, X, groups, rows, quotas, rng):
        p = min(int(self.n_components), X.shape[1])
        Z = pca(X, p, rng, center=False).astype(np.float64)
        m = p if self.group_size == "auto" else int(self.group_size)
        moments = [Moments(Z[r], cos_weights(Z[r], Z[r].mean(axis=0))) for r in rows]
        orders = []
        for c, (r, q) in enumerate(zip(rows, quotas, strict=True)):
            if q == 0:
                continue
            others = None
            if len(rows) > 1:
                for i, mo in enumerate(moments):
                    if i != c:
                        others = mo if others is None else others + mo
            order = rank_class(Z[r], others, m, int(self.ransac_iter), rng)
            orders.append(r[order[:q]])
        return ReducerResult(indices=interleave(orders))
