"""``reduce_dataset``: load → (embed) → select → export, the job behind ``detreduce reduce``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.config import default, output_root
from detreduce.data.export import export_selection
from detreduce.data.load import load_dataset
from detreduce.data.model import DetectionDataset
from detreduce.errors import DatasetError

logger = logging.getLogger("detreduce")

#: Methods that choose without looking at embeddings.
FEATURELESS = {"random", "uniform", "ultralytics_fraction", "ultralytics-fraction"}


@dataclass
class ReduceResult:
    """Where the export went and what was kept."""

    data_yaml: Path
    out_dir: Path
    kept: np.ndarray  # rows of the full dataset
    images_before: int
    figures: dict[str, Any]


def method_uses_features(method: str) -> bool:
    from detreduce.reducers import get_reducer

    if method.lower() in FEATURELESS:
        return False
    return get_reducer(method).uses_features


def default_out_dir(dataset: DetectionDataset, method: str, fraction, seed: int) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(dataset.source).stem or "dataset")
    return output_root() / "reduce" / f"{name}-{method}-{fraction}-s{seed}"


def reduce_dataset(
    data: str | Path | DetectionDataset,
    *,
    method: str | None = None,
    fraction: float | int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    balance: str | None = None,
    backbone: str | None = None,
    level: str = "image",
    device: str = "auto",
    format: str | None = None,
    on_error: str | None = None,
    overwrite: bool = False,
    params: dict[str, Any] | None = None,
    features: np.ndarray | None = None,
) -> ReduceResult:
    """Reduce the train split of ``data`` and export it as an Ultralytics data YAML.

    ``fraction`` is a float in (0, 1] or an image count. ``features`` (rows aligned
    with the train split) skips embedding when given, as a sweep does.
    """
    from detreduce.selection import select_images

    method = default("reduce.method") if method is None else method
    fraction = default("reduce.fraction") if fraction is None else fraction
    seed = default("reduce.seed") if seed is None else seed
    ds = data if isinstance(data, DetectionDataset) else load_dataset(data, format, on_error)
    train_rows = ds.split_indices("train")
    if len(train_rows) == 0:
        raise DatasetError(f"{ds.source}: no train images to reduce")
    train = ds.subset(train_rows)

    box_features = None
    extra: dict[str, Any] = {"level": level}
    if features is None and method_uses_features(method):
        from detreduce.features import embed_dataset

        emb = embed_dataset(
            train, backbone=backbone, level="both" if level == "box" else "image", device=device
        )
        features = emb.image
        if level == "box":
            box_features = (emb.box_image, emb.box_class, emb.box)
        extra["backbone"] = emb.backbone
    selection = select_images(
        train,
        method,
        fraction,
        seed=seed,
        balance=balance,
        features=features,
        box_features=box_features,
        level=level,
        params=params,
    )
    kept = train_rows[np.asarray(selection.indices, dtype=np.int64)]
    out_dir = Path(out) if out else default_out_dir(ds, method, fraction, seed)
    extra.update(
        {
            "balance": selection.balance,
            "budget": selection.budget,
            "strata": selection.strata,
            "figures": selection.figures,
        }
    )
    data_yaml = export_selection(
        ds,
        kept,
        out_dir,
        method=method,
        params=selection.params,
        fraction=fraction,
        seed=seed,
        overwrite=overwrite,
        extra=extra,
    )
    return ReduceResult(
        data_yaml=data_yaml,
        out_dir=data_yaml.parent,
        kept=kept,
        images_before=len(train_rows),
        figures=selection.figures,
    )
