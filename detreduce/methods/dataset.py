"""Dataset-level baselines: methods that need file names or annotations, not embeddings.

``ultralytics_fraction`` is what users get from Ultralytics' own ``fraction=`` train
argument, so every report can say how a method compares with it.
"""

from __future__ import annotations

import numpy as np

from detreduce.data.model import DetectionDataset
from detreduce.methods.catalog import MethodSpec, register
from detreduce.quotas import resolve_budget


class UltralyticsFraction:
    """What Ultralytics' ``fraction=`` keeps: the first N files of the sorted image list.

    Ultralytics 8.x ``BaseDataset.get_img_files`` sorts the image paths (Python string
    order) and keeps ``im_files[: round(len(im_files) * fraction)]`` — not random, not
    class aware (Ultralytics issues #3609, #4606, #6464). ``budget`` is the image count
    (the caller rounds fractions as Ultralytics does). O(n log n).
    """

    def select(self, dataset: DetectionDataset, budget: int, seed: int = 0) -> np.ndarray:
        order = sorted(range(dataset.num_images), key=lambda i: str(dataset.image_paths[i]))
        return np.asarray(order[:budget], dtype=np.int64)


register(
    MethodSpec(
        name="ultralytics_fraction",
        kind="dataset",
        summary="what Ultralytics' fraction= does: the first N files of the sorted list",
        factory=UltralyticsFraction,
        uses_features=False,
        balanced=False,
        baseline="Ultralytics fraction=, first N sorted files",
        reference="ultralytics/data/base.py BaseDataset.get_img_files (8.x)",
    )
)


def ultralytics_fraction_indices(dataset: DetectionDataset, fraction: float | int) -> np.ndarray:
    """Rows Ultralytics' ``fraction=`` keeps; a float is a share, an int a count."""
    return UltralyticsFraction().select(dataset, resolve_budget(fraction, dataset.num_images))
