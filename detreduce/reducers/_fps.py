"""Farthest-first traversal (Gonzalez 1985), the engine of MMS and k-center greedy.

Each step picks the row farthest from the rows already picked, and lowers a running
minimum-distance vector with one GEMV: O(n·d) memory and O(n·k·d) time, never a k × n
matrix. Above ``work_limit`` multiply-adds the rows are split into local partitions
(:mod:`._partition`): every row first gets its distance to the start row(s), then each
pick updates only its own partition and a heap over partitions finds the next farthest
row, O(n·k·d / m). Points near a partition border may then be covered twice (the
composable-coreset approximation of distributed k-center).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from detreduce.reducers._linalg import min_sq_dist, sq_dist_to, sq_norms
from detreduce.reducers._partition import n_partitions, partition_rows


@dataclass(frozen=True)
class Traversal:
    """Result of a farthest-first traversal.

    Attributes:
        order: picked rows, in pick order.
        radius: distance of each pick to the rows picked before it (the covering radius
            at that step; ``inf`` for a first pick with nothing before it).
        mind: final distance of every row to the picked (and initial) rows.
    """

    order: np.ndarray
    radius: np.ndarray
    mind: np.ndarray


def farthest_first(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    start: int | None = None,
    initial: np.ndarray | None = None,
    work_limit: float = float("inf"),
) -> Traversal:
    """Pick ``k`` rows of float32 ``X`` farthest-first.

    Starts from row ``start`` (picked first) or, when ``initial`` rows are given, from the
    distances to them (they are not picked again and do not count in ``k``).
    """
    n, d = X.shape
    sq = sq_norms(X)
    picks: list[int] = []
    radii: list[float] = []
    if initial is not None and len(initial):
        mind2 = min_sq_dist(X, X[np.asarray(initial)])
        mind2[np.asarray(initial)] = -1.0
    else:
        start = int(rng.integers(n)) if start is None else int(start)
        mind2 = sq_dist_to(X, sq, X[start])
        mind2[start] = -1.0
        picks.append(start)
        radii.append(float("inf"))
    m = n_partitions(n, k, d, work_limit)
    parts = partition_rows(X, m, rng) if m > 1 else [np.arange(n)]
    blocks = []
    heap: list[tuple[float, int]] = []
    for j, part in enumerate(parts):
        if len(parts) == 1:
            blocks.append((part, X, sq, mind2))
        else:
            blocks.append((part, X[part], sq[part], mind2[part]))
        heap.append((-float(blocks[j][3].max()), j))
    heapq.heapify(heap)
    while len(picks) < k:
        neg, j = heapq.heappop(heap)
        part, Xj, sqj, m2j = blocks[j]
        i = int(np.argmax(m2j))
        picks.append(int(part[i]))
        radii.append(float(np.sqrt(max(m2j[i], 0.0))))
        np.minimum(m2j, sq_dist_to(Xj, sqj, Xj[i]), out=m2j)
        m2j[i] = -1.0
        heapq.heappush(heap, (-float(m2j.max()), j))
    if len(parts) > 1:
        for part, _, _, m2j in blocks:
            mind2[part] = m2j
    mind = np.sqrt(np.maximum(mind2, 0.0))
    return Traversal(np.asarray(picks, dtype=np.int64), np.asarray(radii), mind)
