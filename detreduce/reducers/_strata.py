"""Per-stratum budgets, as the seed paper runs every method per class.

Perera-Lago et al. (2024) reduce each class separately with the same fraction. Here a
reducer given ``groups`` splits its budget over the groups in proportion to their sizes
(:func:`detreduce.quotas.allocate`, at least one row per group when the budget allows),
or takes the caller's ``quotas``, runs on each group, and interleaves the per-group
orders so that every prefix of the selection stays balanced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from detreduce.config import default
from detreduce.quotas import allocate
from detreduce.reducers.base import Reducer, ReducerResult

#: ``fn(X_group, k_group, rng) -> (order, scores)``: local row indices in selection
#: order, and optional per-row scores of the group (length ``len(X_group)``).
GroupFn = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray | None]]


def group_quotas(sizes: np.ndarray, k: int, quotas: np.ndarray | None = None) -> np.ndarray:
    """Rows to keep per group (groups in sorted label order, as :func:`group_rows`).

    ``quotas`` when the caller gave them (validated by :meth:`Reducer.select`); otherwise
    :func:`detreduce.quotas.allocate` of ``k`` proportional to ``sizes``, with at least
    one row per group when ``k`` is at least the number of groups. O(G log G).
    """
    if quotas is not None:
        return np.asarray(quotas, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    lower = np.ones(len(sizes), dtype=np.int64) if k >= len(sizes) else None
    return allocate(sizes, k, lower)


def interleave(orders: list[np.ndarray]) -> np.ndarray:
    """Merge per-group selection orders so that every prefix is close to proportional.

    The ``r``-th pick of a group with ``q`` picks gets the key ``(r + 0.5) / q``; a stable
    sort on the keys (ties to the earlier group) gives the merged order.
    """
    orders = [np.asarray(o, dtype=np.int64) for o in orders if len(o)]
    if not orders:
        return np.zeros(0, dtype=np.int64)
    keys = np.concatenate([(np.arange(len(o)) + 0.5) / len(o) for o in orders])
    return np.concatenate(orders)[np.argsort(keys, kind="stable")]


def group_rows(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group, groups in sorted label order."""
    _, codes = np.unique(groups, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def child_rngs(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """Independent generators, one per group, derived deterministically from ``rng``."""
    return list(rng.spawn(count))


def select_per_group(
    X: np.ndarray,
    k: int,
    groups: np.ndarray | None,
    rng: np.random.Generator,
    fn: GroupFn,
    quotas: np.ndarray | None = None,
) -> ReducerResult:
    """Run ``fn`` once (no groups) or once per group with :func:`group_quotas`."""
    if groups is None:
        order, scores = fn(X, k, rng)
        return ReducerResult(indices=np.asarray(order, dtype=np.int64), scores=scores)
    rows = group_rows(groups)
    quotas = group_quotas(np.array([len(r) for r in rows]), k, quotas)
    scores = np.full(len(X), np.nan)
    has_scores = False
    orders = []
    for r, q, g_rng in zip(rows, quotas, child_rngs(rng, len(rows)), strict=True):
        if q == 0:
            continue
        local, local_scores = fn(X[r], int(q), g_rng)
        orders.append(r[np.asarray(local, dtype=np.int64)])
        if local_scores is not None:
            scores[r] = local_scores
            has_scores = True
    return ReducerResult(indices=interleave(orders), scores=scores if has_scores else None)


@contextlib.contextmanager
def blas_limits() -> Iterator[None]:
    """Cap BLAS threads at ``reducers.blas_threads`` (cfg) while a reducer runs."""
    threads = default("reducers.blas_threads")
    if threads is None:
        yield
        return
    with threadpool_limits(int(threads), user_api="blas"):
        yield


def as_float32(X: np.ndarray) -> np.ndarray:
    """C-contiguous float32 view or copy of ``X`` (callers must never write into it)."""
    return np.ascontiguousarray(X, dtype=np.float32)


class GroupwiseReducer(Reducer):
    """A reducer that runs per stratum, budgets proportional to stratum sizes (or the
    caller's ``quotas``).

    Subclasses implement :meth:`_check` (parameter validation) and :meth:`_select_group`.
    """

    def _check(self) -> None:
        """Raise :class:`~detreduce.errors.ConfigError` on a bad parameter value."""

    def _select_group(
        self, X: np.ndarray, k: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _select(self, X, k, groups, rng, quotas=None):
        self._check()
        with blas_limits():
            return select_per_group(as_float32(X), k, groups, rng, self._select_group, quotas)


class JointReducer(Reducer):
    """A reducer that sees every stratum at once and keeps per-group quotas.

    The groups are its labels (DES class prototypes, PSA between-class scatter, FES proxy
    targets), so under balance it runs once with the strata as ``groups`` (catalog trait
    ``joint``) and keeps :func:`group_quotas` rows of each group — the caller's quotas
    when given, so a joint run keeps exactly what a per-stratum run keeps.

    Subclasses implement :meth:`_check` (parameter values), optionally
    :meth:`_check_rows` (per-row parameters against ``n``), and :meth:`_select_joint`.
    """

    joint = True

    def _check(self) -> None:
        """Raise :class:`~detreduce.errors.ConfigError` on a bad parameter value."""

    def _check_rows(self, n: int) -> None:
        """Raise on per-row parameters that do not fit ``n`` rows (none by default)."""

    def _select_joint(
        self,
        X: np.ndarray,
        groups: np.ndarray | None,
        rows: list[np.ndarray],
        quotas: np.ndarray,
        rng: np.random.Generator,
    ) -> ReducerResult:
        """Keep ``quotas[g]`` of ``rows[g]`` for every group ``g`` (one group without groups)."""
        raise NotImplementedError

    def _select(self, X, k, groups, rng, quotas=None):
        self._check()
        self._check_rows(len(X))
        with blas_limits():
            X = as_float32(X)
            rows = [np.arange(len(X))] if groups is None else group_rows(groups)
            sizes = np.array([len(r) for r in rows])
            return self._select_joint(X, groups, rows, group_quotas(sizes, k, quotas), rng)
