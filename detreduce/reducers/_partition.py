"""Split rows into local partitions so that O(n·k·d) greedy methods scale.

Greedy selections (farthest-point, herding, k-means++ seeding) cost O(n·k·d), and
k-means with k = the budget O(niter·n·k·d). When that work exceeds a method's
``work_limit``, the rows are split into ``m = ceil(work / work_limit)`` k-means partitions
(at most one per 64 rows), found cheaply on a 32-dimensional PCA projection, and each greedy step only touches its own partition: the composable
coreset idea of distributed k-center / diversity maximisation (Malkomes et al. 2015,
"Fast distributed k-center clustering with outliers on massive data"; Indyk et al. 2014,
"Composable core-sets for diversity and coverage maximization").
"""

from __future__ import annotations

import math

import numpy as np

from detreduce.reducers._kmeans import kmeans
from detreduce.reducers._linalg import pca

PARTITION_DIMS = 32


def n_partitions(n: int, k: int, d: int, work_limit: float, *, min_rows: int = 64) -> int:
    """How many partitions keep the ``n·k·d`` work of a greedy under ``work_limit``."""
    m = math.ceil(float(n) * k * d / float(work_limit))
    return int(max(1, min(m, n // min_rows if n >= 2 * min_rows else 1)))


def partition_rows(X: np.ndarray, m: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of ``m`` (or fewer, never empty) k-means partitions of ``X``, each ascending."""
    n = len(X)
    if m <= 1 or n <= 1:
        return [np.arange(n)]
    Z = pca(X, PARTITION_DIMS, rng) if X.shape[1] > PARTITION_DIMS else X
    _, labels = kmeans(Z, min(m, n), rng, niter=10, sample_per_centroid=32)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [part for part in np.split(order, bounds) if len(part)]
