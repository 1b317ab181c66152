"""select_images: method name → exact image selection, baselines, levels, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.methods import catalog
from detreduce.methods.dataset import ultralytics_fraction_indices
from detreduce.reducers import Reducer, ReducerResult
from detreduce.selection import crop_image_vectors, select_images


def make_dataset(n: int = 40, seed: int = 0) -> DetectionDataset:
    """n images with shuffled file names; class 0 everywhere, 1 in every 4th, 2 in image 7."""
    rng = np.random.default_rng(seed)
    names = [f"/data/images/{s}.jpg" for s in rng.permutation([f"im{i:03d}" for i in range(n)])]
    box_image, box_class = [], []
    for i in range(n):
        for c in (
            [0] * int(rng.integers(1, 5)) + ([1] if i % 4 == 0 else []) + ([2] if i == 7 else [])
        ):
            box_image.append(i)
            box_class.append(c)
    m = len(box_image)
    return DetectionDataset(
        names=["a", "b", "c"],
        image_paths=names,
        image_sizes=[[64, 48]] * n,
        image_splits=["train"] * n,
        box_image=box_image,
        box_class=box_class,
        box_xyxy=np.tile([[1, 1, 20, 20]], (m, 1)).astype(np.float32),
    )


class FirstRows(Reducer):
    """Keeps the first k rows and remembers the matrices it saw."""

    name = "first_rows"
    summary = "test double"
    uses_features = True
    seen: list = []

    def __init__(self, offset: int = 0):
        self.offset = offset

    def _select(self, X, k, groups, rng):
        FirstRows.seen.append(X.copy())
        return ReducerResult(indices=np.arange(k), scores=np.arange(len(X), dtype=float))


@pytest.fixture
def first_rows(monkeypatch):
    """Registers FirstRows for one test only (the registry is process-wide)."""
    catalog.get_method("random")  # load the catalog before adding to it
    spec = catalog.MethodSpec("first_rows", "embedding", FirstRows.summary, factory=FirstRows)
    monkeypatch.setitem(catalog._SPECS, "first_rows", spec)
    FirstRows.seen = []
    return FirstRows


# ---------------------------------------------------------- ultralytics fraction
@pytest.mark.parametrize(
    "method", ["ultralytics_fraction", "ultralytics-fraction", "Ultralytics-Fraction"]
)
def test_ultralytics_fraction_keeps_the_first_sorted_files(method):
    ds = make_dataset()
    sel = select_images(ds, method, 0.25, seed=3)
    expected = sorted(ds.image_paths.tolist())[:10]
    assert ds.image_paths[sel.indices].tolist() == expected
    assert sel.method == "ultralytics_fraction" and sel.balance == "none" and sel.budget == 10


def test_ultralytics_fraction_rounds_like_python():
    ds = make_dataset(n=10)
    # round(10 * 0.25) = round(2.5) = 2 in Python (half to even), as Ultralytics computes it
    assert len(ultralytics_fraction_indices(ds, 0.25)) == 2
    assert len(ultralytics_fraction_indices(ds, 0.35)) == 4
    assert len(ultralytics_fraction_indices(ds, 7)) == 7


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize("fraction", [0, 0.0, -0.1, 1.5, 41, True, "0.5", None])
def test_bad_fractions_raise_config_error(fraction):
    with pytest.raises(ConfigError):
        select_images(make_dataset(), "random", fraction)


@pytest.mark.parametrize(
    ("fraction", "expected"), [(1.0, 40), (40, 40), (1, 1), (0.5, 20), (np.int64(3), 3)]
)
def test_fraction_or_count(fraction, expected):
    sel = select_images(make_dataset(), "random", fraction, balance="none")
    assert len(sel.indices) == expected == sel.budget


def test_unknown_method_level_and_balance_raise():
    ds = make_dataset()
    with pytest.raises(ConfigError, match="unknown method"):
        select_images(ds, "randomm", 0.5)
    with pytest.raises(ConfigError, match="level"):
        select_images(ds, "random", 0.5, level="pixel")
    with pytest.raises(ConfigError, match="balance"):
        select_images(ds, "random", 0.5, balance="boxes")
    with pytest.raises(ConfigError, match="unknown parameter k; its parameters: none"):
        select_images(ds, "ultralytics_fraction", 0.5, params={"k": 1})


def test_feature_method_without_features_raises(first_rows):
    with pytest.raises(ConfigError, match="needs embeddings"):
        select_images(make_dataset(), "first_rows", 0.5)
    with pytest.raises(ConfigError, match="aligned"):
        select_images(make_dataset(), "first_rows", 0.5, features=np.zeros((3, 2)))


# ------------------------------------------------------------------ selection
@pytest.mark.parametrize("balance", ["none", "classes", "classes+boxes"])
def test_random_needs_no_features_and_is_seeded(balance):
    ds = make_dataset()
    a = select_images(ds, "random", 0.3, seed=5, balance=balance)
    b = select_images(ds, "random", 0.3, seed=5, balance=balance)
    c = select_images(ds, "random", 0.3, seed=6, balance=balance)
    assert len(a.indices) == 12 and len(np.unique(a.indices)) == 12
    assert a.indices.tolist() == b.indices.tolist() != c.indices.tolist()
    assert "epsilon" not in a.figures and a.figures["images"]["kept"] == 12
    assert a.balance == "none"  # uniform random, whatever balance says
    if balance != "none":  # the stratified baseline keeps class c (it lives in image 7 only)
        srs = select_images(ds, "srs", 0.3, seed=5, balance=balance)
        assert srs.figures["missing_classes"] == [] and srs.balance == balance


def test_params_and_scores_reach_the_record(first_rows):
    ds = make_dataset()
    X = np.random.default_rng(0).normal(size=(40, 4))
    sel = select_images(ds, "first_rows", 8, features=X, balance="none", params={"offset": 2})
    assert sel.params == {"offset": 2} and sel.method == "first_rows"
    arr = select_images(
        ds, "first_rows", 8, features=X, balance="none", params={"offset": np.ones(3)}
    )
    assert arr.to_dict()["params"] == {"offset": "<array float64 (3,)>"}
    assert sel.indices.tolist() == list(range(8))
    assert sel.scores is not None and sel.scores.tolist() == list(range(40))
    record = json.loads(json.dumps(sel.to_dict(), allow_nan=False))
    assert record["indices"] == list(range(8)) and record["seed"] == 0
    assert "epsilon" in record["figures"] and record["figures"]["epsilon"]["level"] == "image"


# -------------------------------------------------------------------- box level
def test_crop_vectors_are_class_balanced_means_with_fallback():
    # image 0: class-0 crops [1,0] and [3,0] (mean [2,0]), one class-1 crop [0,4]
    # → image vector = mean([2,0], [0,4]) = [1,2]; image 1 has no crop → fallback row.
    vec = crop_image_vectors(
        2,
        box_image=[0, 0, 0],
        box_class=[0, 0, 1],
        matrix=[[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]],
        fallback=np.array([[9.0, 9.0], [7.0, 7.0]]),
    )
    assert vec.tolist() == [[1.0, 2.0], [7.0, 7.0]]
    no_fallback = crop_image_vectors(2, [0, 0, 0], [0, 0, 1], [[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert no_fallback[1].tolist() == pytest.approx([1.0, 2.0])  # mean of the (image, class) means


def test_box_level_reduces_on_crop_vectors(first_rows):
    ds = make_dataset()
    crops = np.random.default_rng(1).normal(size=(ds.num_boxes, 3))
    box = (ds.box_image, ds.box_class, crops)
    sel = select_images(ds, "first_rows", 10, balance="none", box_features=box, level="box")
    expected = crop_image_vectors(ds.num_images, *box)
    assert np.allclose(first_rows.seen[-1], expected)
    assert sel.level == "box" and "epsilon_box" in sel.figures and "epsilon" not in sel.figures
    with pytest.raises(ConfigError, match="box_features"):
        select_images(ds, "first_rows", 10, level="box")
