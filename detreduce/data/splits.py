"""Carve a val split from train when a dataset has none (``data.val_fraction``).

Ultralytics' ``autosplit`` draws train/val/test at random, image by image; a small or
imbalanced detection set then easily gets a val split without its rare classes, and
every mAP measured on it says nothing about them. Here the draw is class-stratified:
each train image is put in the stratum of its rarest class (the ``classes`` strata of
:mod:`detreduce.balance`; images without boxes form their own stratum), the val budget
``round(val_fraction * n_train)`` is shared over strata by the one largest-remainder
allocator (:func:`detreduce.quotas.allocate`), and each stratum's share is drawn with a
seeded generator. The carved images are val from then on: reductions never touch them,
the manifest and ``dataset.notes`` record the carve, and the dataset's fingerprint (it
hashes the splits) changes with it, so caches and sweep protocols never mix the two.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.quotas import allocate

#: Splits that already serve as evaluation data: with one of them, nothing is carved.
EVAL_SPLITS = ("val", "test")


def carve_val(ds: DetectionDataset, val_fraction: float, seed: int = 0) -> DetectionDataset:
    """``ds`` with ``val_fraction`` of its train images moved to a new ``val`` split
    (class-stratified, seeded; module docstring). A dataset that has a val or test
    split is returned unchanged. O(n)."""
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction!r}")
    if any(len(ds.split_indices(s)) for s in EVAL_SPLITS):
        return ds
    from detreduce.balance import rarest_class_labels

    train = ds.split_indices("train")
    n_val = int(round(float(val_fraction) * len(train)))
    if n_val < 1 or n_val >= len(train):
        raise ConfigError(
            f"data.val_fraction {val_fraction} of {len(train)} train images leaves "
            f"{n_val} for val: need at least one image in val and in train"
        )
    labels = np.asarray(rarest_class_labels(ds), dtype=str)[train]
    names, codes = np.unique(labels, return_inverse=True)
    quotas = allocate(np.bincount(codes, minlength=len(names)), n_val, None)
    rng = np.random.default_rng([int(seed) % (1 << 63), 7])
    chosen = [
        rng.choice(train[codes == s], size=int(q), replace=False) for s, q in enumerate(quotas) if q
    ]
    val = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    splits = ds.image_splits.copy()
    splits[val] = "val"
    note = (
        f"no val split: carved {len(val)} of {len(train)} train images into val "
        f"(val_fraction {val_fraction}, seed {seed}, stratified by rarest class over "
        f"{len(names)} strata); they are never reduced"
    )
    return replace(
        ds,
        image_splits=splits,
        split_sources={
            **ds.split_sources,
            "val": [f"carved from train (val_fraction {val_fraction})"],
        },
        notes=[*ds.notes, note],
    )


def with_val(ds: DetectionDataset, val: DetectionDataset, source: str) -> DetectionDataset:
    """``ds`` with every image of ``val`` added as its ``val`` split (``--val PATH``).

    Class ids are matched by name; a val class that ``ds`` does not have is an error
    (its boxes could not be trained or scored). ``ds`` must not have a val split of
    its own. ``val``'s problems and notes are kept, prefixed with where they came from.
    """
    if len(ds.split_indices("val")):
        raise ConfigError(
            f"--val {source}: {ds.source} has a val split already; give --val only for a "
            "dataset without one"
        )
    unknown = sorted(set(val.names) - set(ds.names))
    if unknown:
        raise ConfigError(
            f"--val {source}: classes {unknown} are not classes of {ds.source} ({ds.names})"
        )
    index = {name: i for i, name in enumerate(ds.names)}
    remap = np.array([index[name] for name in val.names], dtype=np.int64)
    n = ds.num_images
    return replace(
        ds,
        image_paths=np.concatenate([ds.image_paths, val.image_paths]),
        image_sizes=np.concatenate([ds.image_sizes, val.image_sizes]),
        image_splits=np.concatenate(
            [ds.image_splits, np.full(val.num_images, "val", dtype=object)]
        ),
        box_image=np.concatenate([ds.box_image, val.box_image + n]),
        box_class=np.concatenate([ds.box_class, remap[val.box_class]]),
        box_xyxy=np.concatenate([ds.box_xyxy, val.box_xyxy]),
        problems=[*ds.problems, *val.problems],
        split_sources={**ds.split_sources, "val": [str(source)]},
        notes=[
            *ds.notes,
            *(f"--val {source}: {note}" for note in val.notes),
            f"val split from --val {source}: {val.num_images} images, {val.num_boxes} boxes "
            "(every image of it, whatever its own split names)",
        ],
    )
