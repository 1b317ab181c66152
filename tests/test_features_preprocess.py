"""Crop geometry and resize policies (pure functions, no network)."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.features.preprocess import Preprocess, crop_boxes, crop_windows, resize_image


@pytest.mark.parametrize(
    ("box", "size", "padding", "min_crop", "expected"),
    [
        # 20x10 box, 25 % context per side -> 30x15 around the centre (50, 50)
        ((40, 45, 60, 55), (200, 100), 0.25, 1, (35, 42, 65, 57)),
        # no padding, already large: the box itself
        ((10, 10, 60, 40), (200, 100), 0.0, 8, (10, 10, 60, 40)),
        # zero-area box (BCCD has two) grows to min_crop around its point
        ((100, 50, 100, 50), (200, 100), 0.1, 32, (84, 34, 116, 66)),
        # at the border: shifted inside, size (object scale) kept
        ((0, 0, 10, 10), (200, 100), 0.5, 1, (0, 0, 20, 20)),
        # entirely outside: the same-size window at the nearest corner
        ((300, 300, 310, 310), (200, 100), 0.0, 1, (190, 90, 200, 100)),
        # min_crop larger than the image: the whole image
        ((5, 5, 6, 6), (20, 10), 0.0, 64, (0, 0, 20, 10)),
    ],
)
def test_crop_windows(box, size, padding, min_crop, expected):
    win = crop_windows(np.array([box], dtype=np.float32), *size, padding, min_crop)
    assert tuple(win[0].tolist()) == expected


def test_crop_windows_always_inside_and_nonempty():
    rng = np.random.default_rng(0)
    boxes = rng.uniform(-50, 250, size=(500, 4)).astype(np.float32)
    win = crop_windows(boxes, 200, 100, 0.2, 16)
    assert (win[:, 0] >= 0).all() and (win[:, 1] >= 0).all()
    assert (win[:, 2] <= 200).all() and (win[:, 3] <= 100).all()
    assert (win[:, 2] > win[:, 0]).all() and (win[:, 3] > win[:, 1]).all()


def test_crop_boxes_cuts_the_right_pixels():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[20:40, 150:190] = (255, 0, 0)  # a red box
    img[60:90, 10:40] = (0, 0, 255)  # a blue box
    crops = crop_boxes(img, np.array([[150, 20, 190, 40], [10, 60, 40, 90]]), 32, 0.0, 1)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.uint8
    assert (crops[0] == (255, 0, 0)).all()
    assert (crops[1] == (0, 0, 255)).all()


def test_resize_policies():
    img = np.full((100, 200, 3), 200, dtype=np.uint8)
    squash = resize_image(img, Preprocess(64, "squash"))
    assert squash.shape == (64, 64, 3) and (squash == 200).all()
    box = resize_image(img, Preprocess(64, "letterbox", pad_value=114))
    assert box.shape == (64, 64, 3)
    assert (box[:16] == 114).all() and (box[-16:] == 114).all()  # 2:1 image -> 32 rows
    assert (box[16:48] == 200).all()


def test_preprocess_rejects_unknown_policy():
    with pytest.raises(ValueError, match="resize"):
        Preprocess(64, "crop")
