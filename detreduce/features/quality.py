"""How well embeddings separate the classes: a check to run before trusting a backbone.

Leave-one-out nearest-class-centroid accuracy of box-crop embeddings is what
tests/test_features_real.py asserts for the pretrained weights (and what a random
network fails), and what ``benchmarks/bench_embed.py quality`` compares across
backbones and crop sizes. It needs no training and costs O(n·k·d).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from detreduce.data.model import DetectionDataset


def centroid_accuracy(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    """Leave-one-out nearest-class-centroid (cosine) accuracy and balanced accuracy.

    Each row is classified against the ``k`` class centroids computed without it.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, y, x)
    counts = np.bincount(y, minlength=k).astype(float)
    pred = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        s, c = sums.copy(), counts.copy()
        s[y[i]] -= x[i]
        c[y[i]] -= 1
        cent = s / np.maximum(c, 1)[:, None]
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
        pred[i] = int(np.argmax(np.where(c > 0, cent @ x[i], -np.inf)))
    present = [c for c in range(k) if (y == c).any()]
    balanced = float(np.mean([(pred[y == c] == c).mean() for c in present]))
    return float((pred == y).mean()), balanced


def boxes_per_class(dataset: DetectionDataset, per_class: int, seed: int = 0) -> DetectionDataset:
    """The images holding ``per_class`` random boxes of each class, with only those boxes."""
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(dataset.box_class == c))[:per_class]
                for c in range(len(dataset.names))
            ]
        )
    )
    kept = dataclasses.replace(
        dataset,
        box_image=dataset.box_image[keep],
        box_class=dataset.box_class[keep],
        box_xyxy=dataset.box_xyxy[keep],
    )
    return kept.subset(np.unique(kept.box_image))
