"""The synthetic generator honours its knobs (imbalance, boxes per image, box sizes, forms)."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.data import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError


def test_imbalance_boxes_per_image_and_sizes(tmp_path):
    data = make_synthetic(
        tmp_path / "s",
        n_images=120,
        n_classes=3,
        class_weights=[10, 3, 1],
        boxes_per_image=(2, 3),
        box_size=(0.2, 0.3),
        imgsz=100,
        seed=0,
    )
    ds = load_dataset(data)
    counts = ds.class_box_counts()
    assert counts[0] > 2 * counts[1] > 0 and counts[1] > counts[2] > 0
    per_image = ds.boxes_per_image()
    assert per_image.min() >= 2 and per_image.max() <= 3
    sides = ds.box_xyxy[:, 2] - ds.box_xyxy[:, 0]
    assert sides.min() >= 19 and sides.max() <= 31
    assert len(ds.split_indices("val")) == 30


def test_background_images_and_same_seed_same_bytes(tmp_path):
    a = make_synthetic(tmp_path / "a", n_images=20, background_fraction=0.5, seed=3)
    b = make_synthetic(tmp_path / "b", n_images=20, background_fraction=0.5, seed=3)
    ds = load_dataset(a)
    assert 3 <= (ds.boxes_per_image() == 0).sum() <= 17
    fa = sorted((a.parent / "images").rglob("*.jpg"))
    fb = sorted((b.parent / "images").rglob("*.jpg"))
    assert [f.read_bytes() for f in fa] == [f.read_bytes() for f in fb]


def test_coco_form_matches_yolo_form(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=10, coco=True, seed=1)
    y, c = load_dataset(data), load_dataset(tmp_path / "s" / "annotations")
    assert np.array_equal(y.class_box_counts(), c.class_box_counts())


@pytest.mark.parametrize(
    "kwargs", [{"n_classes": 0}, {"n_classes": 9}, {"class_weights": [1, -1, 1]}, {"n_images": 1}]
)
def test_bad_parameters(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        make_synthetic(tmp_path / "s", **kwargs)
