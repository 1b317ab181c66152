"""From a method name to an exported selection: the one path ``reduce`` and sweeps share.

:func:`select_images` resolves the budget, looks the method up in the catalog
(:mod:`detreduce.methods`) and runs it by kind: a reducer under a balance mode
(:mod:`detreduce.balance`) on image or aggregated crop embeddings, a dataset-level
baseline on the file list, or — for a training policy — every image (the policy acts
inside the trainer). It attaches the figures of :mod:`detreduce.metrics`.
:func:`select_and_export` adds the export (data YAML, kept list, ``selection.json``);
``detreduce reduce`` and every sweep trial call it, so the two doors cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.balance import balanced_select
from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError, DatasetError
from detreduce.methods import get_method
from detreduce.metrics import selection_figures
from detreduce.reducers import Reducer, resolve_budget
from detreduce.settings import SELECTION_LEVELS, BalanceSettings

LEVELS = SELECTION_LEVELS


@dataclass(frozen=True)
class ImageSelection:
    """The images kept from a (train split) dataset, and how and why.

    Attributes:
        indices: image indices into the dataset given, exactly the budget.
        method: canonical method name.
        params: the reducer's full parameters (explicit and defaults), for the manifest.
        seed: the seed used.
        balance: ``none``, ``classes`` or ``classes+boxes`` (``none`` for baselines that
            ignore labels).
        level: ``image`` or ``box`` (which embeddings the reducer saw).
        budget: the number of images kept (== ``len(indices)``).
        figures: :func:`detreduce.metrics.selection_figures` of the selection.
        strata: images kept per stratum, and the images reserved to keep every class.
        scores: per-image scores from the reducer where it gives them (NaN elsewhere).
    """

    indices: np.ndarray
    method: str
    params: dict[str, Any]
    seed: int
    balance: str
    level: str
    budget: int
    figures: dict[str, Any] = field(default_factory=dict)
    strata: dict[str, Any] = field(default_factory=dict)
    scores: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (without scores) for ``selection.json``."""
        return {
            "method": self.method,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "seed": self.seed,
            "balance": self.balance,
            "level": self.level,
            "budget": self.budget,
            "indices": [int(i) for i in self.indices],
            "strata": self.strata,
            "figures": self.figures,
        }


def _jsonable(value: Any) -> Any:
    """Parameters as JSON: numpy scalars as Python, arrays summarised by shape."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return f"<array {value.dtype} {tuple(value.shape)}>"
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def crop_image_vectors(
    n_images: int,
    box_image: np.ndarray,
    box_class: np.ndarray,
    matrix: np.ndarray,
    fallback: np.ndarray | None = None,
) -> np.ndarray:
    """One vector per image from its crop embeddings: the mean over its classes of the
    imagewise-classwise mean crop (each class present weighs the same, so one platelet
    is not drowned by twenty red cells). Images without crops get their row of
    ``fallback`` (the image embeddings, same width) when given, else the mean vector.
    O(m·d) for m crops.
    """
    box_image = np.asarray(box_image, dtype=np.int64)
    box_class = np.asarray(box_class, dtype=np.int64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if not len(box_image) == len(box_class) == len(matrix) or matrix.ndim != 2:
        raise ConfigError("box_features: box_image, box_class and matrix must align (m, m, m × d)")
    if len(box_image) and (box_image.min() < 0 or box_image.max() >= n_images):
        raise ConfigError(f"box_features: box_image holds an index outside [0, {n_images})")
    d = matrix.shape[1]
    n_cls = int(box_class.max()) + 1 if len(box_class) else 1
    pair = box_image * n_cls + box_class
    keys, inv = np.unique(pair, return_inverse=True)
    pair_sum = np.zeros((len(keys), d))
    np.add.at(pair_sum, inv, matrix)
    pair_mean = pair_sum / np.bincount(inv, minlength=len(keys))[:, None]
    img_of_pair = keys // n_cls
    out = np.zeros((n_images, d))
    np.add.at(out, img_of_pair, pair_mean)
    npairs = np.bincount(img_of_pair, minlength=n_images)
    has = npairs > 0
    out[has] /= npairs[has, None]
    if (~has).any():
        if fallback is not None:
            fallback = np.asarray(fallback)
            if fallback.shape != (n_images, d):
                raise ConfigError(
                    f"level='box': image features of shape {fallback.shape} cannot stand in for "
                    f"images without boxes (expected ({n_images}, {d}))"
                )
            out[~has] = fallback[~has]
        else:
            out[~has] = pair_mean.mean(0) if len(pair_mean) else 0.0
    return out.astype(np.float32)


def select_images(
    dataset: DetectionDataset,
    method: str,
    fraction: float | int,
    seed: int = 0,
    balance: BalanceSettings | Mapping[str, Any] | str | None = None,
    features: np.ndarray | None = None,
    box_features: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    level: str = "image",
    params: dict[str, Any] | None = None,
    *,
    strata: list[str] | None = None,
    with_figures: bool = True,
) -> ImageSelection:
    """Keep ``fraction`` of ``dataset``'s images with ``method`` under ``balance``.

    Args:
        dataset: the dataset to reduce (the train split: val/test are never reduced).
        method: a method of the catalog (``detreduce methods``), any kind.
        fraction: a float in (0, 1] (rounded to the nearest image) or an int count in [1, n].
        seed: seeds every random choice; recorded.
        balance: :class:`~detreduce.settings.BalanceSettings` (or a mapping of its keys,
            or just the mode: ``none``, ``classes`` or ``classes+boxes``); None is the
            cfg's. Its strategy, strata schemes, bins, ε metric and histogram edges
            apply here.
        features: image embeddings aligned with ``dataset``'s images (n × d).
        box_features: ``(box_image, box_class, matrix)`` crop embeddings (m × d).
        level: ``image`` (reduce on ``features``) or ``box`` (reduce on one vector per
            image built from its crops, see :func:`crop_image_vectors`).
        params: keyword parameters of the reducer.
        strata: strata schemes to use instead of the balance mode's.
        with_figures: compute :func:`~detreduce.metrics.selection_figures` (ε needs
            embeddings and is left out without them).
    """
    n = dataset.num_images
    if n == 0:
        raise ConfigError("the dataset has no images to select from")
    k = resolve_budget(fraction, n)
    settings = BalanceSettings.build(balance)
    balance = settings.mode
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    params = dict(params or {})
    spec = get_method(method)
    method_obj = spec.create(**params)  # unknown parameters and bad values fail here
    name = spec.name
    if not spec.balanced:
        balance = "none"
    if not spec.uses_features:
        level = "image"
    if features is not None:
        features = np.asarray(features)
        if features.ndim != 2 or len(features) != n:
            raise ConfigError(
                f"features must be aligned with the {n} images (n × d), got shape {features.shape}"
            )

    strata_info: dict[str, Any] = {}
    scores = None
    full_params = method_obj.get_params() if hasattr(method_obj, "get_params") else {}
    if spec.kind == "training":
        if k != n:
            raise ConfigError(
                f"method {name!r} is a training policy: it runs on the whole train split "
                f"(fraction 1), got a budget of {k} of {n} images"
            )
        indices, balance, with_figures = np.arange(n, dtype=np.int64), "none", False
    elif spec.kind == "dataset":
        indices = method_obj.select(dataset, k, seed=seed)
        balance = "none"
    else:
        X = features
        if level == "box":
            if box_features is None:
                raise ConfigError(
                    "level='box' needs box_features=(box_image, box_class, crop embeddings)"
                )
            X = crop_image_vectors(n, *box_features, fallback=features)
        indices, scores, strata_info = _balanced(
            dataset, method_obj, k, X, settings, balance, strata, seed
        )

    if len(indices) != k or len(np.unique(indices)) != k:
        raise AssertionError(f"{name}: selection of {len(indices)} images, expected {k}")  # a bug
    figures = (
        selection_figures(
            dataset,
            indices,
            features,
            box_features=box_features,
            metric=settings.metric,
            count_edges=settings.count_edges,
            size_edges=settings.size_edges,
        )
        if with_figures
        else {}
    )
    return ImageSelection(
        indices=np.asarray(indices, dtype=np.int64),
        method=name,
        params=full_params,
        seed=int(seed),
        balance=balance,
        level=level,
        budget=k,
        figures=figures,
        strata=strata_info,
        scores=scores,
    )


def _balanced(
    dataset: DetectionDataset,
    reducer: Reducer,
    k: int,
    X: np.ndarray | None,
    settings: BalanceSettings,
    mode: str,
    strata: list[str] | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """A reducer under the balance mode: kept indices, scores, and the strata record."""
    result = balanced_select(
        dataset, reducer, k, X=X, balance=settings, mode=mode, strata=strata, seed=seed
    )
    strata_info = {
        "schemes": result.schemes,
        "strategy": result.strategy,
        "kept_per_stratum": result.quotas,
        "reserved_for_classes": result.reserved,
    }
    return result.indices, result.scores, strata_info


@dataclass(frozen=True)
class ExportedSelection:
    """A selection written as an Ultralytics data YAML.

    Attributes:
        data_yaml: the written ``data.yaml``.
        kept: rows of the full dataset kept (train images only).
        n_train: train images before the reduction.
        selection: what :func:`select_images` chose and why (indices into the train split).
    """

    data_yaml: Path | None  # None: no val/test split to name (``require_eval=False``)
    kept: np.ndarray
    n_train: int
    selection: ImageSelection
    out_dir: Path


def select_and_export(
    dataset: DetectionDataset,
    out_dir: str | Path,
    *,
    method: str,
    fraction: float | int,
    seed: int = 0,
    balance: BalanceSettings | Mapping[str, Any] | str | None = None,
    level: str = "image",
    params: dict[str, Any] | None = None,
    features: np.ndarray | None = None,
    box_features: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    backbone: str = "",
    overwrite: bool = False,
    require_eval: bool = True,
) -> ExportedSelection:
    """Select from the train split of ``dataset`` and export it (the one select → export path).

    ``require_eval``: a dataset without val/test raises (True, sweeps) or is exported
    without a data YAML (False, ``detreduce reduce``; see :func:`export_selection`).

    ``features`` / ``box_features`` are aligned with the train split (as
    :meth:`DetectionDataset.split` orders it). ``backbone`` names the embeddings for the
    manifest (recorded only for methods that read them). val/test are never reduced.
    ``selection.json`` holds the same keys whoever calls this (``detreduce reduce``, a
    sweep trial): dataset, method, parameters, fraction, seed, level, backbone, balance,
    budget, strata, figures and the per-class counts of :func:`export_selection`.
    """
    from detreduce.data.export import export_selection

    train_rows = dataset.split_indices("train")
    if len(train_rows) == 0:
        raise DatasetError(f"{dataset.source}: no train images to reduce")
    selection = select_images(
        dataset.subset(train_rows),
        method,
        fraction,
        seed=seed,
        balance=balance,
        features=features,
        box_features=box_features,
        level=level,
        params=params,
    )
    kept = train_rows[selection.indices]
    uses_features = get_method(selection.method).uses_features
    data_yaml = export_selection(
        dataset,
        kept,
        out_dir,
        method=selection.method,
        params=selection.params,
        fraction=fraction,
        seed=seed,
        overwrite=overwrite,
        require_eval=require_eval,
        extra={
            "level": selection.level,
            "backbone": backbone if uses_features else "",
            "balance": selection.balance,
            "budget": selection.budget,
            "strata": selection.strata,
            "figures": selection.figures,
        },
    )
    return ExportedSelection(
        data_yaml=None if data_yaml is None else Path(data_yaml),
        kept=kept,
        n_train=len(train_rows),
        selection=selection,
        out_dir=Path(out_dir).absolute(),
    )
