"""Train Ultralytics YOLO on a (reduced) split and validate on the untouched val split.

One call = one row of a sweep: mAP50, mAP50-95, per-class AP, precision, recall,
seconds and energy of training and of validation (metered separately), and the counts
(epochs, batches, optimizer steps, images) that training actually ran.

Offline by construction (:mod:`detreduce.train.offline`): no font, AMP-check or hub
download, no analytics, no ``labels.cache`` written outside the run folder and
detreduce's cache. Deterministic given ``seed`` on CPU (Ultralytics ``seed`` +
``deterministic=True``); global RNG and torch determinism settings are restored after.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from detreduce.config import cache_root, default
from detreduce.device import parse_device
from detreduce.energy import EnergyMeter
from detreduce.errors import ConfigError, OutputExistsError, WeightsNotFoundError
from detreduce.train.budget import plan_epochs
from detreduce.train.datayaml import resolve_data_yaml
from detreduce.train.offline import offline_ultralytics, quiet_ultralytics
from detreduce.train.policy import TrainingPolicy, as_policy
from detreduce.train.result import TrainResult

log = logging.getLogger("detreduce")

RESULT_FILE = "result.json"
# Ultralytics train arguments that train_yolo owns; ``train_args`` may not override them.
_OWNED = {
    "data", "epochs", "imgsz", "batch", "device", "seed", "workers", "deterministic", "amp",
    "project", "name", "exist_ok", "plots", "val", "cache", "fraction", "resume", "trainer",
    "verbose", "time",
}  # fmt: skip


def _check_model(model: str) -> str:
    path = Path(model)
    if path.suffix == ".pt":
        if not path.is_file():
            raise WeightsNotFoundError(
                f"weights file not found: {model} (no detector weights are downloaded; "
                "give a local .pt path or a model YAML such as yolov8n.yaml to train from scratch)"
            )
        return str(path.absolute())
    if path.suffix not in {".yaml", ".yml"}:
        raise ConfigError(f"model must be a model YAML (yolov8n.yaml) or a .pt file, got {model!r}")
    return str(path.absolute()) if path.is_file() else model


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("detreduce", "ultralytics", "torch", "codecarbon"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = ""
    return out


@contextmanager
def _preserved_global_state() -> Iterator[None]:
    """Restore global RNGs and torch determinism that Ultralytics' ``init_seeds`` changes."""
    import numpy as np
    import torch

    py_state, np_state, torch_state = (
        random.getstate(),
        np.random.get_state(),
        torch.get_rng_state(),
    )
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    # Same setting again: a no-op that pays torch's one-time import of its inductor config
    # (~5 s on 2 cores) here, not inside the first run's metered training phase.
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _per_class(
    box: Any, names: list[str]
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """AP50 and AP50-95 per class name; None for classes without val boxes."""
    ap50: dict[str, float | None] = dict.fromkeys(names)
    ap: dict[str, float | None] = dict.fromkeys(names)
    index = [int(i) for i in getattr(box, "ap_class_index", [])]
    for row, cls in enumerate(index):
        if 0 <= cls < len(names):
            ap50[names[cls]] = float(box.ap50[row])
            ap[names[cls]] = float(box.ap[row])
    return ap50, ap


def train_yolo(
    data_yaml: str | Path,
    *,
    out_dir: str | Path,
    model: str | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    workers: int | None = None,
    budget: str | None = None,
    fraction: float | None = None,
    max_epoch_scale: float | None = None,
    amp: bool | None = None,
    verbose: bool | None = None,
    overwrite: bool = False,
    train_args: Mapping[str, Any] | None = None,
    energy: EnergyMeter | None = None,
    on_epoch_end: Callable[[int, int], None] | None = None,
    policy: TrainingPolicy | None = None,
) -> TrainResult:
    """Train YOLO on ``data_yaml``'s train split, validate on its full val split.

    Every ``None`` takes its default from ``cfg/train.yaml``. ``budget='steps'`` trains
    ``epochs / fraction`` epochs (capped at ``max_epoch_scale x epochs``, see
    :mod:`detreduce.train.budget`); ``fraction`` is this split's share of the full train
    set. ``train_args`` passes other Ultralytics train arguments (``lr0``, ``mosaic``, ...).
    ``energy`` collects the ``training`` and ``validation`` records (a new meter if None).
    ``on_epoch_end(done, total)`` is called after every epoch (progress bars).
    ``policy`` (:mod:`detreduce.train.policy`) decides what each epoch forwards; None is
    ``full`` (every image, every epoch). Its report lands in ``result.policy``.

    Outputs go under ``out_dir``: ``data.yaml`` (resolved copy), ``train/`` (Ultralytics'
    run, ``weights/last.pt``), ``val/`` and ``result.json``. An ``out_dir`` holding a
    ``result.json`` is a finished run: it raises unless ``overwrite``.
    Cost: ``epochs`` passes over the train images plus one over the val images.
    """
    model = _check_model(default("train.model") if model is None else model)
    epochs = int(default("train.epochs") if epochs is None else epochs)
    imgsz = int(default("train.imgsz") if imgsz is None else imgsz)
    batch = int(default("train.batch") if batch is None else batch)
    device = parse_device(default("train.device") if device is None else device).ultralytics
    seed = int(default("train.seed") if seed is None else seed)
    workers = int(default("train.workers") if workers is None else workers)
    budget = default("train.budget") if budget is None else budget
    fraction = float(default("train.fraction") if fraction is None else fraction)
    max_epoch_scale = float(
        default("train.max_epoch_scale") if max_epoch_scale is None else max_epoch_scale
    )
    amp = bool(default("train.amp") if amp is None else amp)
    verbose = bool(default("train.verbose") if verbose is None else verbose)
    if imgsz < 32 or batch < 1 or workers < 0:
        raise ConfigError(
            f"need imgsz >= 32, batch >= 1, workers >= 0; got imgsz={imgsz}, batch={batch}, "
            f"workers={workers}"
        )
    clash = sorted(set(train_args or {}) & _OWNED)
    if clash:
        raise ConfigError(f"train_args may not set {clash}: use train_yolo's own parameters")
    plan = plan_epochs(epochs, budget=budget, fraction=fraction, max_epoch_scale=max_epoch_scale)
    policy = as_policy(policy)

    data = resolve_data_yaml(data_yaml)
    out = Path(out_dir).absolute()
    if (out / RESULT_FILE).exists() and not overwrite:
        raise OutputExistsError(
            f"{out / RESULT_FILE} exists (a finished run); pass overwrite=True (CLI: --overwrite)"
        )
    for stale in ("train", "val", RESULT_FILE):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    resolved_yaml = data.write(out / "data.yaml")
    meter = energy if energy is not None else EnergyMeter()

    log.info(
        "training %s on %s: %d epochs (budget=%s, fraction=%.3g), imgsz=%d, batch=%d, device=%s",
        model, data.source, plan.epochs, plan.budget, plan.fraction, imgsz, batch, device,
    )  # fmt: skip
    with (
        offline_ultralytics(cache_roots=[out, cache_root()]),
        quiet_ultralytics(verbose),
        _preserved_global_state(),
    ):
        from ultralytics import YOLO

        from detreduce.train.trainer import make_trainer

        yolo = YOLO(model)
        if on_epoch_end is not None:
            yolo.add_callback(
                "on_train_epoch_end", lambda tr: on_epoch_end(int(tr.epoch) + 1, int(tr.epochs))
            )
        # Settings training and validation share, so the two can never disagree.
        common = dict(
            data=str(resolved_yaml),
            imgsz=imgsz,
            batch=batch,
            device=device,
            workers=workers,
            plots=False,
            project=str(out),
            exist_ok=True,
            verbose=verbose,
        )
        with meter.measure("training") as train_phase:
            yolo.train(
                trainer=make_trainer(policy),
                **common,
                name="train",
                epochs=plan.epochs,
                seed=seed,
                deterministic=True,
                amp=amp,
                val=False,
                cache=False,
                **dict(train_args or {}),
            )
        trainer = yolo.trainer
        weights = Path(trainer.last)
        seen: list[int] = []
        val_model = YOLO(str(weights))
        val_model.add_callback("on_val_end", lambda validator: seen.append(int(validator.seen)))
        with meter.measure("validation") as val_phase:
            metrics = val_model.val(**common, name="val", split="val")
    box = metrics.box
    ap50, ap = _per_class(box, data.names)
    result = TrainResult(
        data_yaml=str(data.source),
        model=model,
        imgsz=imgsz,
        batch=batch,
        device=device,
        seed=seed,
        workers=int(getattr(trainer.train_loader, "num_workers", workers)),
        amp=bool(trainer.amp),
        budget=plan.budget,
        fraction=plan.fraction,
        max_epoch_scale=max_epoch_scale,
        base_epochs=plan.base_epochs,
        epochs_planned=plan.epochs,
        budget_capped=plan.capped,
        class_names=list(data.names),
        n_train_images=len(trainer.train_loader.dataset),
        n_val_images=seen[-1] if seen else 0,
        epochs=trainer.epochs_run,
        iterations=trainer.iterations,
        steps=trainer.optimizer_steps,
        images_seen=trainer.images_seen,
        map50=float(box.map50),
        map50_95=float(box.map),
        precision=float(box.mp),
        recall=float(box.mr),
        per_class_ap50=ap50,
        per_class_ap=ap,
        train_energy=train_phase.record,
        val_energy=val_phase.record,
        out_dir=str(out),
        weights=str(weights),
        versions=_versions(),
        policy=trainer.policy_report,
    )
    result.save(out / RESULT_FILE)
    log.info(
        "mAP50-95 %.4f, mAP50 %.4f in %.1f s train + %.1f s val",
        result.map50_95, result.map50, result.seconds_training, result.seconds_validation,
    )  # fmt: skip
    return result
