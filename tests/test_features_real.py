"""Proof the pretrained weights are real, on real photographs (BCCD, aquarium).

(a) The horizontally flipped copy of an image has the original as its nearest
neighbour among all originals; (b) leave-one-out nearest-class-centroid accuracy of
box-crop embeddings is far above chance on aquarium's 7 classes; (c) the same network
randomly initialized scores clearly worse on both. Figures: benchmarks/NOTES_embed.md.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from detreduce.data.load import load_dataset
from detreduce.features import embed_dataset
from detreduce.features.quality import boxes_per_class, centroid_accuracy

pytestmark = pytest.mark.slow


def _with_flipped_copies(ds, folder):
    """The dataset's images followed by horizontally flipped copies written to ``folder``."""
    folder.mkdir()
    flipped = []
    for i, path in enumerate(ds.image_paths):
        out = folder / f"{i:05d}.jpg"
        cv2.imwrite(str(out), cv2.flip(cv2.imread(path), 1), [cv2.IMWRITE_JPEG_QUALITY, 95])
        flipped.append(str(out))
    return dataclasses.replace(
        ds,
        image_paths=np.array([*ds.image_paths, *flipped], dtype=object),
        image_sizes=np.vstack([ds.image_sizes, ds.image_sizes]),
        image_splits=np.concatenate([ds.image_splits, ds.image_splits]),
        box_image=np.zeros(0),
        box_class=np.zeros(0),
        box_xyxy=np.zeros((0, 4)),
    )


def flip_nn_accuracy(ds, tmp_path, weights=None) -> float:
    """Share of flipped images whose nearest original (cosine) is their own original."""
    both = _with_flipped_copies(ds, tmp_path / f"flipped-{weights}")
    emb = embed_dataset(both, "mobilenet_v2", "image", weights=weights, cache=False)
    n = ds.num_images
    nearest = (emb.image[n:] @ emb.image[:n].T).argmax(1)
    return float((nearest == np.arange(n)).mean())


def test_flip_nearest_neighbour_bccd_pretrained_vs_random(bccd, tmp_path):
    train = load_dataset(bccd).split("train")
    pretrained = flip_nn_accuracy(train, tmp_path)
    # The random net on the first 100 images only (time); fewer candidates make its
    # task easier, so the comparison is conservative.
    random = flip_nn_accuracy(train.subset(np.arange(100)), tmp_path, weights="random")
    print(f"bccd flip-NN: pretrained {pretrained:.3f} (205), random {random:.3f} (100)")
    assert pretrained >= 0.95
    assert random <= pretrained - 0.3


def test_flip_nearest_neighbour_aquarium(aquarium, tmp_path):
    train = load_dataset(aquarium).split("train")
    accuracy = flip_nn_accuracy(train, tmp_path)
    print(f"aquarium flip-NN: pretrained {accuracy:.3f}")
    assert accuracy >= 0.95


def test_box_crop_centroid_accuracy_aquarium_pretrained_vs_random(aquarium):
    ds = boxes_per_class(load_dataset(aquarium).split("train"), per_class=40)
    k = len(ds.names)
    results = {}
    for weights in (None, "random"):
        emb = embed_dataset(ds, "mobilenet_v2", "box", weights=weights, cache=False)
        results[weights] = centroid_accuracy(emb.box, emb.box_class, k)
    (acc, balanced), (r_acc, r_balanced) = results[None], results["random"]
    print(f"aquarium crop NCC (LOO, {len(ds.box_class)} crops): pretrained {acc:.3f} ")
    print(f"(balanced {balanced:.3f}), random {r_acc:.3f} (balanced {r_balanced:.3f})")
    chance = 1 / k
    assert balanced >= 4 * chance  # far above chance (0.143)
    assert r_balanced <= balanced - 0.2
