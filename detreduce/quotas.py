"""Budgets: one quota allocator (Hamilton's largest remainder, with bounds) and the rule
that turns a share or a count into a number of rows (:func:`resolve_budget`).

Why one: every place that splits a row budget over strata, groups or partitions (the
balance quotas, the per-group reducers, the joint reducers DES/FES/PSA, the partitions
of herding and two-level k-means) calls :func:`allocate`, so the same sizes and budget
give the same split everywhere. Two allocators with different tie rules used to make a
joint run and a per-stratum run of the same balance keep different numbers of images
per stratum.

The rule (Hamilton 1792, "largest remainder"), with ``T = sum(sizes)`` and stratum
``i``'s exact share ``budget * sizes[i] / T``:

1. start from ``q[i] = clip(floor(share[i]), lower[i], sizes[i])``;
2. while ``sum(q) < budget``, one more row to the stratum with the largest remainder
   ``share[i] - q[i]`` among those with ``q[i] < sizes[i]``;
3. while ``sum(q) > budget`` (only when lower bounds lifted quotas above their share),
   one row fewer for the stratum with the smallest remainder among ``q[i] > lower[i]``.

Ties: a row goes to the larger stratum, then the lower index; a row is taken back in
exactly the reverse order (the smaller stratum, then the higher index). Remainders are
compared exactly, as the integers ``budget * sizes[i] - q[i] * T`` (no float epsilons).
Without lower bounds every quota is the floor or the ceiling of its share.

Step 2 gives at most one row per stratum (the deficit is below the number of strata
with a positive remainder), so it is one sort: O(S log S) for S strata. Step 3 runs at
most ``sum(lower)`` rounds of O(S log S) (the lower bounds are a few reserved rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detreduce.errors import ConfigError

#: Largest total size: ``budget * size`` must fit in int64 for exact remainders.
MAX_TOTAL = 2**31 - 1


def _counts(values: np.ndarray | Sequence[int], what: str) -> np.ndarray:
    """``values`` as a 1-D int64 array of non-negative integers, or ConfigError."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        raise ConfigError(f"{what} must be a 1-D sequence of integers, got {values!r}")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        raise ConfigError(f"{what} must be whole numbers, got {values!r}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ConfigError(f"{what} must be >= 0, got {int(arr[i])} at index {i}")
    return arr


def _integer(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    return int(value)


def allocate(
    sizes: np.ndarray | Sequence[int],
    budget: int,
    lower: np.ndarray | Sequence[int] | None = None,
) -> np.ndarray:
    """Split ``budget`` over strata in proportion to ``sizes`` (module docstring: the rule).

    Args:
        sizes: rows per stratum (non-negative integers).
        budget: rows to keep in all, in ``[sum(lower), sum(sizes)]``.
        lower: optional minimum rows per stratum, ``0 <= lower <= sizes``.

    Returns:
        int64 quotas with ``lower <= quota <= sizes`` and ``sum(quota) == budget``,
        deterministic (ties: the larger stratum, then the lower index, get the row).

    Raises:
        ConfigError: negative or non-integer values, ``lower > sizes``, mismatched
            lengths, or a budget outside ``[sum(lower), sum(sizes)]``.
    """
    sizes = _counts(sizes, "sizes")
    budget = _integer(budget, "budget")
    if lower is None:
        lower = np.zeros_like(sizes)
    else:
        lower = _counts(lower, "lower")
        if lower.shape != sizes.shape:
            raise ConfigError(
                f"lower must have one value per stratum ({len(sizes)}), got {len(lower)}"
            )
        if (lower > sizes).any():
            i = int(np.flatnonzero(lower > sizes)[0])
            raise ConfigError(
                f"lower bound {int(lower[i])} of stratum {i} exceeds its size {int(sizes[i])}"
            )
    total, floor_sum = int(sizes.sum()), int(lower.sum())
    if total > MAX_TOTAL:
        raise ConfigError(f"sizes sum to {total}, above the supported {MAX_TOTAL}")
    if not floor_sum <= budget <= total:
        raise ConfigError(f"budget {budget} outside [{floor_sum}, {total}] (sum of lower, sizes)")
    if budget == total:
        return sizes.copy()
    if budget == floor_sum:
        return lower.copy()
    index = np.arange(len(sizes))
    share = budget * sizes  # exact share times total
    quota = np.clip(share // total, lower, sizes)
    missing = budget - int(quota.sum())
    if missing > 0:
        gap = share - quota * total  # remainder times total
        open_ = np.flatnonzero(quota < sizes)
        # largest remainder first, then the larger stratum, then the lower index
        ranked = open_[np.lexsort((index[open_], -sizes[open_], -gap[open_]))]
        quota[ranked[:missing]] += 1  # at most one row each (module docstring)
    elif missing < 0:  # lower bounds lifted quotas above the budget: give rows back
        over = quota * total - share  # how far above its share, times total
        for _ in range(-missing):  # at most sum(lower) rounds (a few reserved rows)
            cand = np.flatnonzero(quota > lower)
            # smallest remainder (largest excess) first, then the smaller stratum, higher index
            i = cand[np.lexsort((-index[cand], sizes[cand], -over[cand]))[0]]
            quota[i] -= 1
            over[i] -= total
    return quota


def check_quotas(
    quotas: np.ndarray | Sequence[int],
    sizes: np.ndarray | Sequence[int],
    budget: int,
    labels: Sequence | None = None,
) -> np.ndarray:
    """Validate caller-given quotas: one per stratum, each in ``[0, size]``, summing to
    ``budget``; return them as int64. ``labels`` name the strata in error messages."""
    sizes = _counts(sizes, "group sizes")
    q = _counts(quotas, "quotas")
    if q.shape != sizes.shape:
        raise ConfigError(
            f"quotas must hold one count per group ({len(sizes)} groups, in sorted label "
            f"order), got {len(q)}"
        )
    if (q > sizes).any():
        i = int(np.flatnonzero(q > sizes)[0])
        label = labels[i] if labels is not None else i
        name = repr(label.item() if isinstance(label, np.generic) else label)
        raise ConfigError(f"quota {int(q[i])} of group {name} exceeds its {int(sizes[i])} rows")
    if int(q.sum()) != budget:
        raise ConfigError(f"quotas sum to {int(q.sum())}, expected the budget {budget}")
    return q


def resolve_budget(budget: float | int, n: int) -> int:
    """Turn a budget into a row count.

    A float is a fraction in (0, 1] (rounded to the nearest row, at least 1);
    an int is a count in [1, n].
    """
    if isinstance(budget, bool) or not isinstance(budget, int | float | np.integer | np.floating):
        raise ConfigError(f"budget must be a fraction in (0, 1] or a count, got {budget!r}")
    if isinstance(budget, float | np.floating):
        if not 0 < budget <= 1:
            raise ConfigError(f"fraction must be in (0, 1], got {budget}")
        return max(1, min(n, int(round(float(budget) * n))))
    if not 1 <= budget <= n:
        raise ConfigError(f"count must be between 1 and {n}, got {budget}")
    return int(budget)
