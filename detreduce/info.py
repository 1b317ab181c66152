"""What is in a dataset and what is wrong with it: the figures behind ``detreduce info``."""

from __future__ import annotations

from typing import Any

import numpy as np

from detreduce.data.model import MEDIUM_AREA, SMALL_AREA, DetectionDataset


def size_buckets(ds: DetectionDataset) -> dict[str, int]:
    """COCO size buckets by box area: small < 32², medium < 96², large."""
    area = ds.box_areas()
    return {
        "small": int((area < SMALL_AREA).sum()),
        "medium": int(((area >= SMALL_AREA) & (area < MEDIUM_AREA)).sum()),
        "large": int((area >= MEDIUM_AREA).sum()),
    }


def split_summary(ds: DetectionDataset) -> dict[str, Any]:
    per_image = ds.boxes_per_image()
    counts = ds.class_box_counts()
    return {
        "images": ds.num_images,
        "boxes": ds.num_boxes,
        "boxes_per_class": {name: int(c) for name, c in zip(ds.names, counts)},
        "images_per_class": {name: int(c) for name, c in zip(ds.names, ds.class_image_counts())},
        "boxes_per_image": {
            "min": int(per_image.min()) if len(per_image) else 0,
            "median": float(np.median(per_image)) if len(per_image) else 0.0,
            "max": int(per_image.max()) if len(per_image) else 0,
        },
        "box_sizes": size_buckets(ds),
        "background_images": int((per_image == 0).sum()),
    }


def dataset_summary(ds: DetectionDataset) -> dict[str, Any]:
    """A JSON-ready summary: totals, per split figures, and every problem found."""
    return {
        "source": ds.source,
        "format": ds.format,
        "fingerprint": ds.fingerprint(),
        "classes": list(ds.names),
        "images": ds.num_images,
        "boxes": ds.num_boxes,
        "splits": {s: split_summary(ds.split(s)) for s in ds.splits},
        "problem_counts": _counts(ds),
        "problems": [p.to_dict() for p in ds.problems],
    }


def _counts(ds: DetectionDataset) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in ds.problems:
        out[p.kind] = out.get(p.kind, 0) + 1
    return out
