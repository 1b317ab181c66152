"""``reduce_dataset``: load → (embed) → select → export, the job behind ``detreduce reduce``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.config import output_root
from detreduce.data.load import load_dataset
from detreduce.data.model import DetectionDataset
from detreduce.errors import DatasetError, OutputExistsError
from detreduce.methods import get_method
from detreduce.settings import BalanceSettings, DataSettings, FeatureSettings, ReduceSettings

logger = logging.getLogger("detreduce")


@dataclass
class ReduceResult:
    """Where the export went and what was kept."""

    data_yaml: Path | None  # None: the dataset has no val/test split (selection.json says so)
    out_dir: Path
    kept: np.ndarray  # rows of the full dataset
    images_before: int
    figures: dict[str, Any]


def default_out_dir(dataset: DetectionDataset, method: str, fraction, seed: int) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(dataset.source).stem or "dataset")
    return output_root() / "reduce" / f"{name}-{method}-{fraction}-s{seed}"


def check_output(out: str | Path | None, overwrite: bool = False) -> None:
    """Fail at once when ``out`` exists and ``overwrite`` is not set (cheap: one stat).

    ``reduce_dataset`` calls it before reading any data; the CLI calls it first of all,
    before its settings import the method catalog.
    """
    if out is not None and Path(out).exists() and not overwrite:
        raise OutputExistsError(
            f"{Path(out).absolute()} exists; pass --overwrite (overwrite=True) to replace it"
        )


def reduce_dataset(
    data: str | Path | DetectionDataset,
    *,
    settings: ReduceSettings | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    balance: BalanceSettings | Mapping[str, Any] | str | None = None,
    embedding: FeatureSettings | Mapping[str, Any] | None = None,
    format: str | None = None,
    on_error: str | None = None,
    overwrite: bool = False,
    params: dict[str, Any] | None = None,
    features: np.ndarray | None = None,
    **overrides: Any,
) -> ReduceResult:
    """Reduce the train split of ``data`` and export it as an Ultralytics data YAML.

    ``settings`` (:class:`~detreduce.settings.ReduceSettings`: ``method``, ``fraction``,
    ``seed``, ``level``) is built once with ``ReduceSettings.build(settings,
    **overrides)``, so ``reduce_dataset(ds, method="random", fraction=0.25)`` works;
    ``fraction`` is a float share in (0, 1] or an int image count. ``balance``
    (:class:`~detreduce.settings.BalanceSettings`, a mapping, or just the mode) and
    ``embedding`` (:class:`~detreduce.settings.FeatureSettings`: backbone, device, ...;
    its ``level`` follows ``settings.level``) are built the same way. Every setting and
    an existing ``out`` (without ``overwrite``) are checked before any data is read.
    ``features`` (rows aligned with the train split) skips embedding when given, as a
    sweep does; a given ``embedding.backbone`` then only names them in the manifest. Calls the
    same :func:`~detreduce.selection.select_and_export` as every sweep trial.
    """
    from detreduce.selection import select_and_export

    check_output(out, overwrite)
    cfg = ReduceSettings.build(settings, **overrides)
    balance = BalanceSettings.build(balance)
    reading = DataSettings.build(on_error=on_error)
    named = embedding is not None  # with ``features`` given, only a given backbone names them
    embedding = FeatureSettings.build(embedding, level="both" if cfg.level == "box" else "image")
    spec = get_method(cfg.method)
    ds = (
        data if isinstance(data, DetectionDataset) else load_dataset(data, format, settings=reading)
    )
    train = ds.split("train")
    if train.num_images == 0:
        raise DatasetError(f"{ds.source}: no train images to reduce")
    out_dir = Path(out) if out else default_out_dir(ds, spec.name, cfg.fraction, cfg.seed)
    check_output(out_dir, overwrite)  # the default folder is known now: still before embedding

    box_features = None
    backbone = embedding.backbone if named else ""
    if features is None and spec.uses_features:
        from detreduce.features import embed_dataset

        emb = embed_dataset(train, settings=embedding)
        features, backbone = emb.image, emb.backbone
        if cfg.level == "box":
            box_features = (emb.box_image, emb.box_class, emb.box)
    exported = select_and_export(
        ds,
        out_dir,
        method=spec.name,
        fraction=cfg.fraction,
        seed=cfg.seed,
        balance=balance,
        level=cfg.level,
        params=params,
        features=features,
        box_features=box_features,
        backbone=backbone,
        overwrite=overwrite,
        require_eval=False,
    )
    return ReduceResult(
        data_yaml=exported.data_yaml,
        out_dir=exported.out_dir,
        kept=exported.kept,
        images_before=exported.n_train,
        figures=exported.selection.figures,
    )
