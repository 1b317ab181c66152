"""Leave-one-out nearest-centroid accuracy and per-class box sampling."""

from __future__ import annotations

import numpy as np

from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.features.quality import boxes_per_class, centroid_accuracy


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_separated_classes_score_one_and_shuffled_labels_score_near_chance():
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(4, 32)))
    y = np.repeat(np.arange(4), 50)
    x = _unit(centres[y] + 0.05 * rng.normal(size=(200, 32)))
    assert centroid_accuracy(x, y, 4) == (1.0, 1.0)
    acc, balanced = centroid_accuracy(x, rng.permutation(y), 4)
    assert acc < 0.45 and balanced < 0.45  # chance is 0.25


def test_leave_one_out_excludes_the_row_itself():
    # Two points per class: with the row in its own centroid every row would be right;
    # left out, each row meets only its twin, which sits closer to the other class.
    x = _unit(np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.2], [0.2, 0.9]]))
    y = np.array([0, 0, 1, 1])
    acc, _ = centroid_accuracy(x, y, 2)
    assert acc == 0.0


def test_a_class_with_one_box_is_never_predicted_from_an_empty_centroid():
    x = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    acc, balanced = centroid_accuracy(x, np.array([0, 0, 1]), 2)
    assert acc == 2 / 3 and balanced == 0.5  # the lone class-1 row cannot be right


def test_boxes_per_class_keeps_at_most_n_of_each_and_only_their_images(tmp_path):
    ds = load_dataset(make_synthetic(tmp_path / "s", n_images=30, imgsz=64, seed=2))
    small = boxes_per_class(ds, per_class=3, seed=1)
    counts = np.bincount(small.box_class, minlength=len(ds.names))
    assert (counts == np.minimum(3, np.bincount(ds.box_class, minlength=len(ds.names)))).all()
    assert set(np.unique(small.box_image)) == set(range(small.num_images))  # no empty image
    assert boxes_per_class(ds, 3, seed=1).image_paths.tolist() == small.image_paths.tolist()
