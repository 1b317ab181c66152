"""Write a selection as an Ultralytics data YAML that ``yolo train`` accepts unchanged.

Output folder (written atomically: built under a temp name, then renamed):

- ``data.yaml``: absolute paths; ``train:`` the kept-image list, ``val``/``test``
  lists of every image of those splits (never reduced); same ``names``.
- ``train.txt`` (kept images), ``val.txt``/``test.txt``.
- ``selection.json``: the manifest (dataset fingerprint, method, parameters, fraction,
  seed, per-class image/box counts before and after, skipped problems, version, time).
- ``instances_train.json`` for COCO inputs: the subset as COCO JSON.

Image paths point into the cached YOLO view of the dataset (:mod:`yolo_view`), which
gets the entries of the listed images (kept train, every val/test image) where missing.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detreduce import __version__
from detreduce.data.atomic import AtomicDir, write_json, write_text
from detreduce.data.formats.coco import write_subset
from detreduce.data.model import DetectionDataset
from detreduce.data.yolo_view import yolo_view
from detreduce.errors import ConfigError, DatasetError

#: Why an export has no data YAML (written to selection.json and printed by reduce).
NO_EVAL_REASON = (
    "the dataset has no val or test split, so there is nothing to validate a training on; "
    "carve one with --val-fraction F (data.val_fraction) or add a val split to the dataset"
)


def class_counts(ds: DetectionDataset) -> dict[str, dict[str, int]]:
    """Per class name: images containing it and boxes."""
    return {
        name: {"images": int(i), "boxes": int(b)}
        for name, i, b in zip(ds.names, ds.class_image_counts(), ds.class_box_counts())
    }


def export_selection(
    dataset: DetectionDataset,
    kept_indices: np.ndarray | list[int],
    out_dir: str | Path,
    *,
    method: str,
    params: dict[str, Any] | None = None,
    fraction: float | int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
    require_eval: bool = True,
) -> Path | None:
    """Write ``out_dir`` for the train images ``kept_indices`` (rows of ``dataset``).

    Returns the path of the written ``data.yaml``. A dataset without a val or test
    split has nothing to validate on: with ``require_eval`` (sweeps, which train) that
    raises; without it (``detreduce reduce``) the kept list, ``selection.json`` and, for
    COCO, the reduced ``instances_train.json`` are still written, ``selection.json``
    says why there is no ``data.yaml``, and None is returned.
    """
    kept = np.asarray(kept_indices, dtype=np.int64).reshape(-1)
    if len(kept) == 0:
        raise ConfigError("the selection is empty: nothing to export")
    if len(np.unique(kept)) != len(kept):
        raise ConfigError("the selection holds an image twice")
    if kept.min() < 0 or kept.max() >= dataset.num_images:
        raise ConfigError(f"selection indices must be in [0, {dataset.num_images})")
    if not (dataset.image_splits[kept] == "train").all():
        raise ConfigError("the selection must hold train images only (val/test are never reduced)")
    eval_splits = [s for s in ("val", "test") if len(dataset.split_indices(s))]
    no_eval = not eval_splits
    if no_eval and require_eval:
        raise DatasetError(
            f"{dataset.source}: no val or test split to validate on; add one to the dataset "
            "or carve one with --val-fraction (data.val_fraction)"
        )
    if eval_splits and "val" not in eval_splits:
        eval_splits = ["test"]

    listed = [kept] + [dataset.split_indices(s) for s in eval_splits]
    view_root, view_paths = yolo_view(dataset, rows=np.concatenate(listed))
    train = dataset.split("train")
    subset = dataset.subset(kept)
    with AtomicDir(out_dir, overwrite=overwrite) as tmp:
        final = Path(out_dir).absolute()
        write_text(tmp / "train.txt", "\n".join(view_paths[kept]) + "\n")
        data = {
            "path": str(view_root),
            "train": str(final / "train.txt"),
        }
        for split in eval_splits:
            idx = dataset.split_indices(split)
            write_text(tmp / f"{split}.txt", "\n".join(view_paths[idx]) + "\n")
            data[split if split != "test" or "val" in eval_splits else "val"] = str(
                final / f"{split}.txt"
            )
        data["nc"] = len(dataset.names)
        data["names"] = dict(enumerate(dataset.names))
        if not no_eval:
            write_text(tmp / "data.yaml", yaml.safe_dump(data, sort_keys=False))
        manifest = {
            "detreduce_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dataset": {
                "source": dataset.source,
                "format": dataset.format,
                "fingerprint": dataset.fingerprint(),
                "yolo_view": str(view_root),
            },
            "method": method,
            "params": params or {},
            "fraction": fraction,
            "seed": seed,
            "images_before": train.num_images,
            "images_after": int(len(kept)),
            "kept_fraction": len(kept) / max(train.num_images, 1),
            "boxes_before": train.num_boxes,
            "boxes_after": subset.num_boxes,
            "classes_before": class_counts(train),
            "classes_after": class_counts(subset),
            "eval_splits": eval_splits,
            "data_yaml": None if no_eval else "data.yaml",
            **({"no_data_yaml": NO_EVAL_REASON} if no_eval else {}),
            "notes": list(getattr(dataset, "notes", [])),
            "skipped_problems": {
                "counts": dict(Counter(p.kind for p in dataset.problems)),
                "items": [p.to_dict() for p in dataset.problems],
            },
            "kept_images": [str(p) for p in dataset.image_paths[kept]],
        }
        if extra:
            manifest.update(extra)
        write_json(tmp / "selection.json", manifest)
        if dataset.format == "coco":
            _write_coco_subset(dataset, kept, tmp / "instances_train.json")
    return None if no_eval else Path(out_dir).absolute() / "data.yaml"


def _write_coco_subset(dataset: DetectionDataset, kept: np.ndarray, out: Path) -> None:
    """The original train JSON filtered to the kept images (original ids kept)."""
    sources = dataset.split_sources.get("train") or []
    if len(sources) != 1 or not sources[0].endswith(".json"):
        return
    kept_names = {os.path.basename(p) for p in dataset.image_paths[kept].tolist()}
    write_subset(Path(sources[0]), kept_names, out)
