"""``reduce_dataset``: load → (embed) → select → export, the job behind ``detreduce reduce``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.config import default, output_root
from detreduce.data.load import load_dataset
from detreduce.data.model import DetectionDataset
from detreduce.errors import DatasetError
from detreduce.methods import get_method

logger = logging.getLogger("detreduce")


@dataclass
class ReduceResult:
    """Where the export went and what was kept."""

    data_yaml: Path
    out_dir: Path
    kept: np.ndarray  # rows of the full dataset
    images_before: int
    figures: dict[str, Any]


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
    with the train split) skips embedding when given, as a sweep does. Calls the same
    :func:`~detreduce.selection.select_and_export` as every sweep trial.
    """
    from detreduce.selection import select_and_export

    method = get_method(default("reduce.method") if method is None else method).name
    fraction = default("reduce.fraction") if fraction is None else fraction
    seed = default("reduce.seed") if seed is None else seed
    ds = data if isinstance(data, DetectionDataset) else load_dataset(data, format, on_error)
    train = ds.split("train")
    if train.num_images == 0:
        raise DatasetError(f"{ds.source}: no train images to reduce")

    box_features = None
    if features is None and get_method(method).uses_features:
        from detreduce.features import embed_dataset

        emb = embed_dataset(
            train, backbone=backbone, level="both" if level == "box" else "image", device=device
        )
        features, backbone = emb.image, emb.backbone
        if level == "box":
            box_features = (emb.box_image, emb.box_class, emb.box)
    out_dir = Path(out) if out else default_out_dir(ds, method, fraction, seed)
    exported = select_and_export(
        ds,
        out_dir,
        method=method,
        fraction=fraction,
        seed=seed,
        balance=balance,
        level=level,
        params=params,
        features=features,
        box_features=box_features,
        backbone=backbone or "",
        overwrite=overwrite,
    )
    return ReduceResult(
        data_yaml=exported.data_yaml,
        out_dir=exported.out_dir,
        kept=exported.kept,
        images_before=exported.n_train,
        figures=exported.selection.figures,
    )
