"""The one quota allocator (:mod:`detreduce.quotas`) and the quotas it hands to reducers.

A property test over ``CASES`` = 5,000 seeded random cases checks :func:`allocate`
against the documented rule written as plain loops, plus exact totals, bounds,
determinism, index invariance and proportionality; hand-made ties pin the tie rule;
and over a few hundred small random datasets the joint and per-stratum balance paths
keep the same number of images per stratum.
"""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.balance import balanced_select
from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.quotas import allocate, check_quotas
from detreduce.reducers import get_reducer, list_reducers
from detreduce.reducers._strata import group_quotas

#: Random cases of the property test.
CASES = 5_000
#: Random datasets on which the two balance strategies must agree (srs; des on a share).
DATASETS = 300
DES_DATASETS = 40
#: Reducers that ignore groups, so they cannot honour quotas.
GROUP_BLIND = {"random"}


def reference(sizes, budget, lower=None) -> list[int]:
    """The module docstring's rule, literally: clip the floors, then add or take back
    one row at a time, remainders compared as exact integers. O(S · excess)."""
    sizes = [int(s) for s in sizes]
    n, total = len(sizes), sum(sizes)
    lower = [0] * n if lower is None else [int(v) for v in lower]
    if total == 0:
        return [0] * n
    q = [min(max(budget * s // total, lo), s) for s, lo in zip(sizes, lower, strict=True)]
    while sum(q) < budget:  # largest remainder, then larger stratum, then lower index
        i = max(
            (i for i in range(n) if q[i] < sizes[i]),
            key=lambda i: (budget * sizes[i] - q[i] * total, sizes[i], -i),
        )
        q[i] += 1
    while sum(q) > budget:  # smallest remainder, then smaller stratum, then higher index
        i = max(
            (i for i in range(n) if q[i] > lower[i]),
            key=lambda i: (q[i] * total - budget * sizes[i], -sizes[i], i),
        )
        q[i] -= 1
    return q


def random_case(rng: np.random.Generator):
    """Sizes with zeros and repeated values (ties), optional lower bounds, any budget."""
    n = int(rng.integers(1, 13))
    high = int(rng.choice([3, 10, 60]))
    sizes = rng.integers(0, high + 1, size=n)
    if rng.random() < 0.3:  # many equal sizes: remainder ties
        sizes = rng.choice(sizes[:2], size=n)
    lower = None
    if rng.random() < 0.5:
        lower = np.minimum(sizes, rng.integers(0, 3, size=n))
    low = 0 if lower is None else int(lower.sum())
    budget = int(rng.integers(low, int(sizes.sum()) + 1))
    return sizes, budget, lower


# -------------------------------------------------------------------- properties
def test_allocate_properties_on_random_cases():
    rng = np.random.default_rng(20261201)
    distinct = bounded = 0
    for _ in range(CASES):
        sizes, budget, lower = random_case(rng)
        q = allocate(sizes, budget, lower)
        lo = np.zeros_like(sizes) if lower is None else lower
        assert q.dtype == np.int64
        assert q.tolist() == reference(sizes, budget, lower), (sizes, budget, lower)
        assert int(q.sum()) == budget
        assert (lo <= q).all() and (q <= sizes).all()
        np.testing.assert_array_equal(allocate(sizes, budget, lower), q)  # deterministic
        perm = rng.permutation(len(sizes))
        moved = allocate(sizes[perm], budget, None if lower is None else lower[perm])
        if len(set(sizes.tolist())) == len(sizes):  # no ties by index: position is irrelevant
            distinct += 1
            np.testing.assert_array_equal(moved, q[perm])
        if lower is None:
            bounded += 1
            # equal strata may swap a row by index, but each size keeps the same quotas
            assert sorted(zip(sizes[perm], moved, strict=True)) == sorted(
                zip(sizes, q, strict=True)
            )
            # Hamilton: within one row of the exact share (floor or ceiling), exactly
            total = int(sizes.sum())
            if total:
                err = q * total - budget * sizes
                assert (np.abs(err) < total).all(), (sizes, budget, q)
    assert distinct > CASES // 10 and bounded > CASES // 3  # both branches were exercised


def test_large_inputs_stay_exact():
    rng = np.random.default_rng(1)
    sizes = rng.integers(0, 5_000, size=100_000)
    lower = np.minimum(sizes, rng.integers(0, 3, size=len(sizes)))
    for budget in (int(lower.sum()) + 1, int(sizes.sum()) // 7, int(sizes.sum()) - 1):
        q = allocate(sizes, budget, lower)
        assert int(q.sum()) == budget and (lower <= q).all() and (q <= sizes).all()


# ----------------------------------------------------------------------- tie rule
@pytest.mark.parametrize(
    ("sizes", "budget", "lower", "expected"),
    [
        ([7, 9, 4], 10, None, [3, 5, 2]),  # remainders .5/.5/0: the larger stratum
        ([5, 5], 5, None, [3, 2]),  # same size: the lower index
        ([5, 5, 5], 4, None, [2, 1, 1]),
        ([3, 0, 7], 5, None, [1, 0, 4]),  # .5/.5 again: the larger, not the earlier
        ([7, 2, 1], 5, None, [4, 1, 0]),
        ([30, 20, 10], 25, None, [13, 8, 4]),
        ([50, 30, 20], 10, None, [5, 3, 2]),
        ([50, 1, 1], 2, None, [2, 0, 0]),
        ([50, 1, 1], 3, [1, 1, 1], [1, 1, 1]),  # lower bounds bind, the big one gives back
        ([7, 2, 1], 5, [0, 0, 1], [3, 1, 1]),  # the reserved image is kept
        ([1, 1, 98], 3, [1, 1, 0], [1, 1, 1]),
        ([4, 6, 1, 1], 6, [1, 1, 1, 1], [1, 3, 1, 1]),  # give-back tie: the smaller one
        ([6, 6, 1, 1], 3, [0, 0, 1, 1], [1, 0, 1, 1]),  # give-back tie, same size: later
        ([100] + [1] * 50, 60, [0] + [1] * 50, [10] + [1] * 50),  # many rows back at once
        ([3, 3], 6, None, [3, 3]),
        ([0, 0], 0, None, [0, 0]),
        ([], 0, None, []),
    ],
)
def test_documented_tie_rule(sizes, budget, lower, expected):
    assert allocate(sizes, budget, lower).tolist() == expected
    assert reference(sizes, budget, lower) == expected


@pytest.mark.parametrize(
    ("sizes", "budget", "lower", "match"),
    [
        ([3, 4], 2, [4, 0], "lower bound 4 of stratum 0 exceeds its size 3"),
        ([3, -1], 1, None, "sizes must be >= 0"),
        ([3, 4], 2, [-1, 0], "lower must be >= 0"),
        ([3, 4], 8, None, r"budget 8 outside \[0, 7\]"),
        ([3, 4], 1, [1, 1], r"budget 1 outside \[2, 7\]"),
        ([3, 4], -1, None, "budget -1 outside"),
        ([3, 4], 2.5, None, "budget must be an integer"),
        ([3, 4], True, None, "budget must be an integer"),
        ([3, 4], 2, [1], "one value per stratum"),
        ([1.5, 2], 1, None, "whole numbers"),
        ([[1, 2]], 1, None, "1-D"),
        (["a", "b"], 1, None, "1-D sequence of integers"),
        ([2**31, 1], 1, None, "above the supported"),
    ],
)
def test_bad_inputs_raise_config_error(sizes, budget, lower, match):
    with pytest.raises(ConfigError, match=match):
        allocate(sizes, budget, lower)


@pytest.mark.parametrize(
    ("quotas", "match"),
    [
        ([1, 2], "one count per group"),
        ([5, 0, 0], "quota 5 of group 'a' exceeds its 4 rows"),
        ([1, 1, 1], "quotas sum to 3, expected the budget 4"),
        ([2, -1, 3], "quotas must be >= 0"),
    ],
)
def test_check_quotas_rejects_bad_quotas(quotas, match):
    with pytest.raises(ConfigError, match=match):
        check_quotas(quotas, [4, 3, 2], 4, labels=["a", "b", "c"])


# ------------------------------------------------------------ reducers and quotas
def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(["x", "y", "z"], [30, 20, 10])
    centres = rng.normal(scale=5, size=(3, 5))
    X = centres[np.unique(groups, return_inverse=True)[1]] + rng.normal(size=(n, 5))
    return X.astype(np.float32), groups


GROUPED = [s.name for s in list_reducers() if s.name not in GROUP_BLIND]


@pytest.mark.parametrize("name", GROUPED)
def test_every_grouped_reducer_keeps_the_given_quotas(name):
    X, groups = _blobs()
    quotas = np.array([2, 0, 9])  # far from proportional (which is [6, 4, 1] for 11)
    params = {"losses": np.linalg.norm(X, axis=1)} if name == "el2n" else {}  # per-row scores
    res = get_reducer(name, **params).select(X, 11, groups=groups, seed=0, quotas=quotas)
    kept = np.unique(groups[res.indices], return_counts=True)
    assert dict(zip(*kept, strict=True)) == {"x": 2, "z": 9}


@pytest.mark.parametrize(
    ("with_groups", "quotas", "match"),
    [
        (False, [2, 0, 9], "quotas need groups"),
        (True, [2, 9], "one count per group"),
        (True, [2, 0, 8], "quotas sum to 10, expected the budget 11"),
        (True, [0, 0, 11], "quota 11 of group 'z' exceeds its 10 rows"),
    ],
)
def test_select_validates_quotas(with_groups, quotas, match):
    X, groups = _blobs()
    with pytest.raises(ConfigError, match=match):
        get_reducer("srs").select(
            X, 11, groups=groups if with_groups else None, seed=0, quotas=quotas
        )


def test_group_blind_reducer_refuses_quotas():
    X, groups = _blobs()
    with pytest.raises(ConfigError, match="does not take per-group quotas"):
        get_reducer("random").select(X, 11, groups=groups, seed=0, quotas=[2, 0, 9])


# -------------------------------------------------------- balance paths agree
def random_dataset(rng: np.random.Generator) -> DetectionDataset:
    """2–40 images, 2–4 classes of skewed frequency, 0–5 boxes an image."""
    n, c = int(rng.integers(2, 41)), int(rng.integers(2, 5))
    weights = rng.dirichlet(np.full(c, 0.5))
    per_image = [rng.choice(c, size=int(rng.integers(0, 6)), p=weights).tolist() for _ in range(n)]
    box_class = [k for classes in per_image for k in classes]
    xy = rng.uniform(0, 50, size=(len(box_class), 2))
    wh = rng.uniform(2, 50, size=(len(box_class), 2))
    return DetectionDataset(
        names=[f"c{k}" for k in range(c)],
        image_paths=[f"/data/img_{i:04d}.jpg" for i in range(n)],
        image_sizes=[[100, 100]] * n,
        image_splits=["train"] * n,
        box_image=[i for i, classes in enumerate(per_image) for _ in classes],
        box_class=box_class,
        box_xyxy=np.hstack([xy, xy + wh]).astype(np.float32).reshape(-1, 4),
    )


def _both_strategies(ds, reducer, k, mode, keep, X, seed):
    out = {}
    for strategy in ("joint", "per_stratum"):
        out[strategy] = balanced_select(
            ds, reducer, k, X=X, mode=mode, strategy=strategy, keep_every_class=keep, seed=seed
        )
    return out["joint"], out["per_stratum"]


def test_joint_and_per_stratum_keep_the_same_images_per_stratum():
    rng = np.random.default_rng(7)
    own_split_differs = 0
    for case in range(DATASETS + DES_DATASETS):
        ds = random_dataset(rng)
        k = int(rng.integers(1, ds.num_images + 1))
        mode = str(rng.choice(["classes", "classes+boxes"]))
        keep = bool(rng.random() < 0.7)
        name = "srs" if case < DATASETS else "des"
        X = rng.normal(size=(ds.num_images, 4)).astype(np.float32) if name == "des" else None
        joint, per = _both_strategies(ds, get_reducer(name), k, mode, keep, X, seed=case)
        assert (joint.strategy, per.strategy) == ("joint", "per_stratum")
        assert joint.quotas == per.quotas, (case, name)
        for res in (joint, per):
            assert len(res.indices) == k and len(np.unique(res.indices)) == k
            kept = dict(zip(*np.unique(res.strata[res.indices].astype(str), return_counts=True)))
            assert {s: q for s, q in res.quotas.items() if q} == kept
        # not vacuous: the reducer's own split of the free rows would often differ
        names, codes = np.unique(per.strata.astype(str), return_inverse=True)
        lower = np.bincount(codes[per.reserved], minlength=len(names)) if per.reserved else 0
        free = np.bincount(codes, minlength=len(names)) - lower
        need = np.array([per.quotas[s] for s in names]) - lower
        present, total = free > 0, int(need.sum())
        if 0 < total < int(free.sum()):
            own = group_quotas(free[present], total)
            own_split_differs += not np.array_equal(own, need[present])
    assert own_split_differs >= 10
