"""Split rows into local partitions so that O(n·k·d) greedy methods scale.

Greedy selections (farthest-point, herding, k-means++ seeding) cost O(n·k·d), and
k-means with k = the budget O(niter·n·k·d). When that work exceeds a method's
``work_limit``, the rows are split into ``m = ceil(work / work_limit)`` k-means partitions
(at most one per 64 rows), found cheaply on a 32-dimensional PCA projection, and each greedy step only touches its own partition: the composable
coreset idea of distributed k-center / diversity maximisation (Malkomes et al. 2015,
"Fast distributed k-center clustering with outliers on massive data"; Indyk et al. 2014,
"Composable core-sets for diversity and coverage maximization").

One k-means with ``m`` centroids costs O(m) seeding passes over ``32·m`` sampled rows,
O(m²) in all, which dominated CLC at a million rows (m = 12,800: 204 s of 217 s). Above
``MAX_FLAT_PARTITIONS`` the split is two-level (a vocabulary tree, Nistér & Stewénius
2006): ``ceil(√m)`` coarse k-means cells, then each cell split into its share of the
``m`` partitions (proportional to its size, at least one), O(m^1.5) seeding work,
then one global Lloyd step: every row moves to the nearest partition centroid (faiss
exact search, :func:`._neighbors.nearest`), so the few rows of a cluster that a coarse
cell border cut off join their cluster instead of a far partition. Up to
``MAX_FLAT_PARTITIONS`` the split is one k-means, as before.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from detreduce.quotas import allocate
from detreduce.reducers._kmeans import kmeans
from detreduce.reducers._linalg import pca
from detreduce.reducers._neighbors import nearest

log = logging.getLogger("detreduce")

PARTITION_DIMS = 32
#: Partitions found by one k-means; more are found in two levels (module docstring).
MAX_FLAT_PARTITIONS = 2048


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
    m = min(m, n)
    parts = _split(Z, m, rng)
    if m > MAX_FLAT_PARTITIONS:
        parts = _refine(Z, parts)
    log.debug("partitioned %d rows into %d local partitions (approximate)", n, len(parts))
    return parts


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Rows of each label present, rows ascending, labels ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [part for part in np.split(order, bounds) if len(part)]


def _cells(Z: np.ndarray, m: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The non-empty cells of one k-means with ``m`` centroids, rows ascending."""
    return _groups(kmeans(Z, m, rng, niter=10, sample_per_centroid=32)[1])


def _refine(Z: np.ndarray, parts: list[np.ndarray]) -> list[np.ndarray]:
    """One Lloyd step over all partitions: each row joins the nearest partition mean."""
    sizes = np.array([len(p) for p in parts])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sums = np.add.reduceat(Z[np.concatenate(parts)], starts, axis=0, dtype=np.float64)
    return _groups(nearest(Z, (sums / sizes[:, None]).astype(np.float32)))


def _split(Z: np.ndarray, m: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``m <= len(Z)`` partitions: one k-means, or two levels above ``MAX_FLAT_PARTITIONS``."""
    if m <= MAX_FLAT_PARTITIONS:
        return _cells(Z, m, rng)
    cells = _cells(Z, math.ceil(math.sqrt(m)), rng)
    sizes = np.array([len(c) for c in cells])
    shares = allocate(sizes, m, lower=np.ones(len(cells), dtype=np.int64))
    parts: list[np.ndarray] = []
    for cell, q in zip(cells, shares, strict=True):
        if q <= 1:
            parts.append(cell)
        else:
            parts.extend(cell[sub] for sub in _split(Z[cell], int(q), rng))
    return parts
