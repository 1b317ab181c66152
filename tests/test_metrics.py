"""ε-representativeness and distribution-shift figures, against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.metrics import (
    directed_hausdorff,
    epsilon_per_class,
    epsilon_representativeness,
    histogram,
    nearest_distances,
    selection_figures,
    total_variation,
)


# ------------------------------------------------------------------- distances
def test_chebyshev_and_euclidean_pick_different_nearest_points():
    # a=(0,0); b1=(3,3): L∞ 3, L2 √18≈4.243; b2=(0,4): L∞ 4, L2 4.
    A = np.array([[0.0, 0.0]])
    B = np.array([[3.0, 3.0], [0.0, 4.0]])
    assert directed_hausdorff(A, B, "chebyshev") == pytest.approx(3.0)
    assert directed_hausdorff(A, B, "euclidean") == pytest.approx(4.0)


def test_directed_hausdorff_hand_example():
    # (1,1)→(0,0): L∞ 1, L2 √2.  (4,0)→(5,3): L∞ 3, L2 √10 (nearer than (0,0): 4, 4).
    A = np.array([[1.0, 1.0], [4.0, 0.0]])
    B = np.array([[0.0, 0.0], [5.0, 3.0]])
    assert directed_hausdorff(A, B, "chebyshev") == pytest.approx(3.0)
    assert directed_hausdorff(A, B, "euclidean") == pytest.approx(math.sqrt(10))
    assert nearest_distances(A, B, "chebyshev").tolist() == pytest.approx([1.0, 3.0])


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_pruned_hausdorff_equals_brute_force(metric):
    rng = np.random.default_rng(0)
    for na, nb, d in [(300, 40, 16), (500, 3, 64), (40, 200, 8), (1, 1, 5)]:
        # clustered data, where L2 and L∞ neighbours disagree more often than on Gaussians
        centres = rng.normal(size=(5, d)) * 4
        A = centres[rng.integers(0, 5, na)] + rng.normal(size=(na, d))
        B = centres[rng.integers(0, 5, nb)] + rng.normal(size=(nb, d))
        expected = nearest_distances(A, B, metric).max()
        got = directed_hausdorff(A, B, metric, block=(7, 13), chunk_rows=50)
        assert got == pytest.approx(expected, rel=1e-5)


def test_empty_sides_and_bad_metric():
    A = np.ones((3, 2))
    assert directed_hausdorff(A, np.empty((0, 2))) == math.inf
    assert directed_hausdorff(np.empty((0, 2)), A) == 0.0
    with pytest.raises(ConfigError, match="metric"):
        directed_hausdorff(A, A, "cosine")


# -------------------------------------------------------------------------- ε
def test_epsilon_is_inf_for_a_class_with_no_kept_point_and_nan_for_an_absent_class():
    X = np.array([[0.0], [1.0], [5.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    per = epsilon_per_class(X, y, kept=[0], metric="euclidean", n_classes=3)
    assert per[0] == pytest.approx(1.0)
    assert per[1] == math.inf
    assert math.isnan(per[2])
    assert epsilon_representativeness(X, y, kept=[0], metric="euclidean") == math.inf


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_epsilon_of_the_full_set_is_zero(metric):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 32)).astype(np.float32)
    y = rng.integers(0, 4, 120)
    assert epsilon_representativeness(X, y, kept=np.arange(120), metric=metric) == 0.0


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_epsilon_does_not_increase_when_points_are_added(metric):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 10))
    y = rng.integers(0, 3, 150)
    order = rng.permutation(150)
    previous = math.inf
    for k in (3, 6, 12, 25, 50, 100, 150):
        eps = epsilon_representativeness(X, y, kept=order[:k], metric=metric)
        assert eps <= previous + 1e-12
        previous = eps
    assert previous == 0.0


def test_multilabel_rows_count_for_every_class_they_hold():
    X = np.array([[0.0], [2.0], [10.0]])
    member = np.array([[1, 0], [1, 1], [0, 1]])  # row 1 holds classes 0 and 1
    per = epsilon_per_class(X, member, kept=[1], metric="chebyshev")
    assert per.tolist() == pytest.approx([2.0, 8.0])


# --------------------------------------------------------------- distributions
def test_total_variation_hand_computed():
    # [1,1,2] → [.25,.25,.5]; [0,1,1] → [0,.5,.5]; ½(.25 + .25 + 0) = .25
    assert total_variation([1, 1, 2], [0, 1, 1]) == pytest.approx(0.25)
    assert total_variation([3, 0], [0, 5]) == pytest.approx(1.0)
    assert total_variation([2, 2], [1, 1]) == 0.0
    assert total_variation([0, 0], [1, 0]) == 1.0
    assert total_variation([0, 0], [0, 0]) == 0.0
    with pytest.raises(ConfigError):
        total_variation([1, 2], [1, 2, 3])


def test_histogram_bins_with_open_last_bin():
    assert histogram([0, 1, 1, 2, 7, 150], [0, 1, 2, 5, 100]).tolist() == [1, 2, 1, 1, 1]


# ---------------------------------------------------------------- all figures
def _dataset() -> DetectionDataset:
    # image 0: two a; image 1: one a + one b; image 2: one c; image 3: background
    return DetectionDataset(
        names=["a", "b", "c"],
        image_paths=[f"/d/{i}.jpg" for i in range(4)],
        image_sizes=[[100, 100]] * 4,
        image_splits=["train"] * 4,
        box_image=[0, 0, 1, 1, 2],
        box_class=[0, 0, 0, 1, 2],
        box_xyxy=[[0, 0, 10, 10], [0, 0, 50, 50], [0, 0, 10, 10], [0, 0, 30, 30], [0, 0, 80, 80]],
    )


def test_selection_figures_are_json_and_mark_dropped_classes():
    ds = _dataset()
    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    box = (ds.box_image, ds.box_class, np.arange(10, dtype=float).reshape(5, 2))
    fig = selection_figures(ds, [0, 1], X, box_features=box, metric="chebyshev")
    text = json.dumps(fig, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    back = json.loads(text)
    assert back["images"] == {"full": 4, "kept": 2}
    assert back["boxes"] == {"full": 5, "kept": 4}
    assert back["missing_classes"] == ["c"]
    assert back["box_share"]["full"] == pytest.approx([0.6, 0.2, 0.2])
    assert back["box_share"]["kept"] == pytest.approx([0.75, 0.25, 0.0])
    # ½(|.6−.75| + |.2−.25| + |.2−0|) = .2
    assert back["box_share"]["tv"] == pytest.approx(0.2)
    assert back["images_per_class"] == {"full": [2, 1, 1], "kept": [2, 1, 0]}
    assert back["epsilon"]["per_class"] == {"a": 0.0, "b": 0.0, "c": "inf"}
    assert back["epsilon"]["overall"] == "inf"
    assert float(back["epsilon"]["overall"]) == math.inf
    assert back["epsilon_box"]["per_class"]["c"] == "inf"
    # box counts per image: [2, 2, 1, 0] vs kept [2, 2]
    hist = back["box_count_hist"]
    assert hist["full"][:4] == [1, 1, 2, 0] and hist["kept"][:3] == [0, 0, 2]
    assert hist["tv"] == pytest.approx(0.5)
    assert sum(back["box_size_hist"]["full"]) == 5


def test_selection_figures_accept_a_mask_and_an_empty_selection():
    ds = _dataset()
    X = np.arange(8, dtype=float).reshape(4, 2)
    by_index = selection_figures(ds, [0, 2], X)
    by_mask = selection_figures(ds, np.array([True, False, True, False]), X)
    assert by_index == by_mask
    empty = selection_figures(ds, [], X)
    assert empty["epsilon"]["overall"] == "inf" and empty["box_share"]["tv"] == 1.0


def test_selection_figures_without_embeddings_leave_epsilon_out():
    fig = selection_figures(_dataset(), [0, 1, 2, 3])
    assert "epsilon" not in fig and "epsilon_box" not in fig
    assert fig["box_share"]["tv"] == 0.0 and fig["missing_classes"] == []
    with pytest.raises(ConfigError, match="aligned"):
        selection_figures(_dataset(), [0], np.zeros((3, 2)))
