"""Detection-aware balance: strata labels, quotas, class coverage, exact budget."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.balance import (
    balanced_select,
    box_count_labels,
    category_labels,
    class_set_labels,
    dominant_class_labels,
    image_strata,
    rarest_class_labels,
)
from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.metrics import class_box_shares, total_variation
from detreduce.quotas import allocate
from detreduce.reducers import Reducer, ReducerResult, get_reducer


def make_dataset(per_image: list[list[int]], names=("a", "b", "c")) -> DetectionDataset:
    """A dataset whose image i holds one 10×10 box per class id listed in per_image[i]."""
    box_image = [i for i, classes in enumerate(per_image) for _ in classes]
    box_class = [c for classes in per_image for c in classes]
    xyxy = [[0, 0, 10 + 5 * (j % 7), 10] for j in range(len(box_class))]
    n = len(per_image)
    return DetectionDataset(
        names=list(names),
        image_paths=[f"/data/img_{i:04d}.jpg" for i in range(n)],
        image_sizes=[[100, 100]] * n,
        image_splits=["train"] * n,
        box_image=box_image,
        box_class=box_class,
        box_xyxy=np.array(xyxy, dtype=np.float32).reshape(-1, 4),
    )


def skewed_dataset(n: int = 200, seed: int = 0) -> DetectionDataset:
    """Class 0 common (1–8 boxes in every image), class 1 in ~30 % of images, class 2 in 2."""
    rng = np.random.default_rng(seed)
    per_image = []
    for i in range(n):
        boxes = [0] * int(rng.integers(1, 9))
        if rng.random() < 0.3:
            boxes += [1] * int(rng.integers(1, 4))
        if i in (17, 123):
            boxes += [2]
        per_image.append(boxes)
    return make_dataset(per_image, names=("common", "medium", "rare"))


class Spy(Reducer):
    """Records what it was given; keeps the first rows."""

    name = "spy"
    summary = "test double"
    uses_features = True

    def __init__(self):
        self.calls = []
        self.quotas = []

    def _select(self, X, k, groups, rng, quotas=None):
        self.calls.append((X.copy(), k, None if groups is None else groups.copy()))
        self.quotas.append(quotas)
        if quotas is None:
            return ReducerResult(indices=np.arange(k))
        # the first quotas[g] rows of each group (sorted labels), as the quotas ask
        labels = np.unique(groups)
        return ReducerResult(
            indices=np.concatenate(
                [np.flatnonzero(groups == g)[:q] for g, q in zip(labels, quotas, strict=True)]
            )
        )


# --------------------------------------------------------------------- strata
def test_strata_labels_hand_computed():
    # class totals: a=5, b=3, c=1 → c is rarest, then b.
    ds = make_dataset([[0, 0, 1], [0], [0, 0, 2, 1], [], [1, 1]])
    assert rarest_class_labels(ds).tolist() == [
        "rarest:b",
        "rarest:a",
        "rarest:c",
        "empty",
        "rarest:b",
    ]
    assert dominant_class_labels(ds).tolist() == [
        "dominant:a",
        "dominant:a",
        "dominant:a",
        "empty",
        "dominant:b",
    ]
    assert class_set_labels(ds).tolist() == ["set:a+b", "set:a", "set:a+b+c", "empty", "set:b"]
    assert category_labels(ds).tolist() == ["mixed", "single:a", "mixed", "empty", "multi:b"]


def test_dominant_ties_go_to_the_rarer_class():
    ds = make_dataset([[0, 1], [0, 0, 0]])  # image 0: one a, one b; b is rarer overall
    assert dominant_class_labels(ds)[0] == "dominant:b"


def test_box_count_buckets_are_ordered_and_background_apart():
    ds = make_dataset([[0] * k for k in (1, 1, 2, 3, 6, 9)] + [[]])
    labels = box_count_labels(ds, bins=3)
    assert labels[-1] == "boxes:0"
    assert len(set(labels[:-1])) == 3
    assert labels[0] == labels[1] and labels[4] == labels[5]


def test_crossed_schemes_and_unknown_scheme():
    ds = make_dataset([[0], [1, 1]])
    assert image_strata(ds, ["rarest_class", "category"]).tolist() == [
        "rarest:a|single:a",
        "rarest:b|multi:b",
    ]
    with pytest.raises(ConfigError, match="unknown strata scheme"):
        image_strata(ds, "nope")


# ------------------------------------------------------------------- coverage
@pytest.mark.parametrize("mode", ["classes", "classes+boxes"])
@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5])
def test_balance_keeps_every_class_and_exact_budget(mode, fraction):
    ds = skewed_dataset()
    k = round(fraction * ds.num_images)
    for seed in range(5):
        res = balanced_select(ds, get_reducer("random"), fraction, mode=mode, seed=seed)
        assert len(res.indices) == k and len(np.unique(res.indices)) == k
        kept_classes = set(ds.box_class[np.isin(ds.box_image, res.indices)].tolist())
        assert kept_classes == {0, 1, 2}, (mode, fraction, seed)


def test_without_balance_the_rare_class_is_usually_lost():
    """The failure that balance fixes: 10 random images of 200 rarely include 2 given ones."""
    ds = skewed_dataset()
    lost = 0
    for seed in range(10):
        res = balanced_select(ds, get_reducer("random"), 0.05, mode="none", seed=seed)
        assert len(res.indices) == 10
        lost += 2 not in ds.box_class[np.isin(ds.box_image, res.indices)]
    assert lost >= 5


def test_budget_smaller_than_classes_keeps_the_rarest_first():
    ds = skewed_dataset()
    res = balanced_select(ds, get_reducer("random"), 1, mode="classes", seed=0)
    assert len(res.indices) == 1
    assert res.indices[0] in (17, 123)  # an image holding the rare class


def test_quotas_preserve_box_shares():
    """Box shares of a 25 % selection stay within TV 0.05 of the full set's, and closer
    on average than without balance (20 seeds)."""
    ds = skewed_dataset()
    full = class_box_shares(ds.box_class, 3)
    tv = {"none": [], "classes": []}
    for mode in tv:
        for seed in range(20):
            res = balanced_select(ds, get_reducer("random"), 0.25, mode=mode, seed=seed)
            kept = np.isin(ds.box_image, res.indices)
            tv[mode].append(total_variation(full, class_box_shares(ds.box_class[kept], 3)))
    assert max(tv["classes"]) <= 0.05
    assert np.mean(tv["classes"]) < np.mean(tv["none"])


def test_per_stratum_counts_match_quotas():
    ds = skewed_dataset()
    res = balanced_select(ds, get_reducer("random"), 50, mode="classes", seed=1)
    labels = rarest_class_labels(ds)
    names, counts = np.unique(labels.astype(str), return_counts=True)
    lower = [int((labels[res.reserved] == s).sum()) for s in names]
    expected = allocate(counts, 50, lower)
    kept = [int((labels[res.indices] == s).sum()) for s in names]
    assert kept == expected.tolist()
    assert res.quotas == dict(zip(names.tolist(), expected.tolist(), strict=True))


# --------------------------------------------------------------- strategies
def test_per_stratum_runs_the_reducer_inside_each_stratum():
    ds = skewed_dataset()
    X = np.arange(ds.num_images, dtype=np.float32)[:, None]
    spy = Spy()
    res = balanced_select(ds, spy, 0.25, X=X, mode="classes", strategy="per_stratum", seed=0)
    labels = rarest_class_labels(ds)
    assert all(groups is None for _, _, groups in spy.calls)
    stratum_calls = [c for c in spy.calls if c[1] > 1]
    for Xs, _, _ in stratum_calls:
        rows = Xs[:, 0].astype(int)
        assert len(set(labels[rows])) == 1  # one stratum per call
    assert len(res.indices) == 50


def test_joint_strategy_passes_strata_as_groups():
    ds = skewed_dataset()
    X = np.arange(ds.num_images, dtype=np.float32)[:, None]
    spy = Spy()
    res = balanced_select(ds, spy, 0.25, X=X, mode="classes", strategy="joint", seed=0)
    X_last, k_last, groups = spy.calls[-1]
    assert groups is not None and len(groups) == len(X_last)
    labels = rarest_class_labels(ds)[X_last[:, 0].astype(int)]
    # same stratum ⇔ same group code
    assert len(np.unique(groups)) == len(set(labels))
    assert k_last == 50 - len(res.reserved)
    assert res.strategy == "joint" and len(res.indices) == 50
    # the joint call gets the per-stratum quotas, in sorted group-code order
    quotas = spy.quotas[-1]
    per_stratum = balanced_select(
        ds, Spy(), 0.25, X=X, mode="classes", strategy="per_stratum", seed=0
    )
    assert quotas is not None and quotas.sum() == k_last
    assert res.quotas == per_stratum.quotas


def test_feature_method_without_features_and_bad_options_raise():
    ds = skewed_dataset(n=20)
    with pytest.raises(ConfigError, match="needs embeddings"):
        balanced_select(ds, Spy(), 0.5, mode="classes")
    with pytest.raises(ConfigError, match="balance.mode: expected one of"):
        balanced_select(ds, get_reducer("random"), 0.5, mode="class")
    with pytest.raises(ConfigError, match="strategy"):
        balanced_select(ds, get_reducer("random"), 0.5, mode="classes", strategy="both")
