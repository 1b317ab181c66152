"""Train Ultralytics YOLO on a (reduced) split and validate on the untouched val split.

One call = one row of a sweep: mAP50, mAP50-95, per-class AP, precision, recall,
seconds and energy of training and of validation (metered separately), and the counts
(epochs, batches, optimizer steps, images) that training actually ran.

Offline by construction (:mod:`detreduce.train.offline`): no font, AMP-check or hub
download, no analytics, no ``labels.cache`` written outside the run folder and
detreduce's cache. Deterministic given ``seed`` on CPU (Ultralytics ``seed`` +
``deterministic=True``) and the torch CPU thread count (:mod:`detreduce.train.threads`:
``threads``/``workers`` from the machine unless set, both recorded); global RNG, torch
determinism settings and torch's thread count are restored after.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from detreduce.config import cache_root
from detreduce.energy import EnergyMeter, EnergyRecord
from detreduce.errors import ConfigError, OutputExistsError
from detreduce.settings import DataSettings, EnergySettings, TrainSettings
from detreduce.train.budget import EpochPlan, plan_epochs
from detreduce.train.convergence import Convergence
from detreduce.train.datayaml import DataYaml, resolve_data_yaml
from detreduce.train.offline import offline_ultralytics, quiet_ultralytics
from detreduce.train.policy import TrainingPolicy, as_policy
from detreduce.train.result import TrainResult
from detreduce.train.threads import ThreadPlan, plan_threads, restored_threads
from detreduce.train.zoo import resolve_model

log = logging.getLogger("detreduce")

RESULT_FILE = "result.json"
# Ultralytics train arguments that train_yolo owns; ``train_args`` may not override them.
_OWNED = {
    "data", "epochs", "imgsz", "batch", "device", "seed", "workers", "deterministic", "amp",
    "project", "name", "exist_ok", "plots", "val", "cache", "fraction", "resume", "trainer",
    "verbose", "time", "patience",
}  # fmt: skip


def _check_labels(data_yaml: str | Path, on_error: str) -> None:
    """Read the data YAML's images and label files through detreduce's loader.

    ``raise`` stops at the first problem (one-line :class:`DatasetError`); ``warn`` logs
    the problems (counts per kind, the first few with file and line) and training goes
    on with the data YAML unchanged.
    """
    from detreduce.data.load import load_dataset

    ds = load_dataset(data_yaml, format="yolo", on_error=on_error)
    if not ds.problems:
        log.info("%s: labels checked, no problems", data_yaml)


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
    settings: TrainSettings | Mapping[str, Any] | None = None,
    energy: EnergyMeter | EnergySettings | None = None,
    policy: TrainingPolicy | None = None,
    on_epoch_end: Callable[[int, int], None] | None = None,
    on_error: str | None = None,
    overwrite: bool = False,
    train_args: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train YOLO on ``data_yaml``'s train split, validate on its full val split.

    ``settings`` (:class:`~detreduce.settings.TrainSettings`: model, epochs, imgsz,
    batch, device, seed, workers, threads, budget, fraction, max_epoch_scale, amp, verbose,
    allow_download) is built once with ``TrainSettings.build(settings, **overrides)``, so
    ``train_yolo(data, out_dir=..., epochs=5)`` and
    ``train_yolo(data, out_dir=..., settings=TrainSettings.build(epochs=5))`` are one
    path with one validation; unknown keywords raise with suggestions.
    ``budget='steps'`` trains ``epochs / fraction`` epochs (capped at
    ``max_epoch_scale x epochs``, see :mod:`detreduce.train.budget`); ``fraction`` is
    this split's share of the full train set. ``budget='converge'`` validates every
    ``val_every`` epochs and stops when val mAP50-95 has not improved for ``patience``
    epochs, or at ``max_epochs`` (:mod:`detreduce.train.convergence`; the LR schedule
    spans ``max_epochs``, as with Ultralytics' own ``patience``). Every run records
    ``result.curve``: one point per in-training validation (``val_every >= 1``), or
    the final validation alone. ``model`` is resolved by
    :func:`detreduce.train.zoo.resolve_model`: a zoo name (``yolo-mobilenetv2``) trains
    from its ImageNet backbone offline, a model YAML from scratch, a ``.pt`` from those
    weights (an official name not on disk only with ``allow_download``); ``result.model``
    records the zoo name, the YAML as given or the ``.pt``'s absolute path.
    ``train_args`` passes other Ultralytics train arguments (``lr0``, ``mosaic``, ...)
    unchanged; it may not set what the settings own. ``energy`` collects the ``training`` and ``validation`` records: a
    meter, or the :class:`~detreduce.settings.EnergySettings` of a new one (None: the
    defaults). ``on_epoch_end(done, total)`` is called after every epoch (progress bars).
    ``policy`` (:mod:`detreduce.train.policy`) decides what each epoch forwards; None is
    ``full`` (every image, every epoch). Its report lands in ``result.policy``.
    ``on_error`` (``warn`` or ``raise``) first reads the data YAML's images and label
    files through detreduce's loader (:func:`detreduce.data.load.load_dataset`):
    ``raise`` stops at the first problem before anything is written, ``warn`` logs the
    problems and trains on the data YAML unchanged (Ultralytics then applies its own
    label checks); None (the default, as sweeps use on splits detreduce exported)
    skips that pass.

    Outputs go under ``out_dir``: ``data.yaml`` (resolved copy), ``train/`` (Ultralytics'
    run, ``weights/last.pt``), ``val/`` and ``result.json``. An ``out_dir`` holding a
    ``result.json`` is a finished run: it raises unless ``overwrite``, before any data
    is read. Cost: ``epochs`` passes over the train images plus one over the val images.
    """
    cfg = TrainSettings.build(settings, **overrides)
    clash = sorted(set(train_args or {}) & _OWNED)
    if clash:
        raise ConfigError(
            f"train_args may not set {clash}: they are train settings "
            "(train_yolo keywords; CLI: their own options, not --train-arg)"
        )
    if on_error is not None:
        DataSettings.build(on_error=on_error)  # a bad value fails before any work
    plan = plan_epochs(
        cfg.epochs,
        budget=cfg.budget,
        fraction=cfg.fraction,
        max_epoch_scale=cfg.max_epoch_scale,
        max_epochs=cfg.max_epochs,
    )
    convergence = _convergence(cfg)
    policy = as_policy(policy)
    out = Path(out_dir).absolute()
    if (out / RESULT_FILE).exists() and not overwrite:
        raise OutputExistsError(
            f"{out / RESULT_FILE} exists (a finished run); pass overwrite=True (CLI: --overwrite)"
        )

    data = resolve_data_yaml(data_yaml)
    if on_error is not None:
        _check_labels(data.source, on_error)
    device = cfg.resolved_device.ultralytics  # "auto" resolved here (imports torch)
    threads = plan_threads(cfg.threads, cfg.workers, cfg.resolved_device.kind)
    resolved_yaml = _fresh_out_dir(out, data)
    # A zoo name: its YAML written, its backbone weights linked into detreduce's torch hub.
    model = resolve_model(cfg.model, allow_download=cfg.allow_download)
    meter = energy if isinstance(energy, EnergyMeter) else EnergyMeter(energy)
    log.info(
        "training %s on %s: %d epochs (budget=%s, fraction=%.3g), imgsz=%d, batch=%d, device=%s",
        model.name, data.source, plan.epochs, plan.budget, plan.fraction, cfg.imgsz, cfg.batch, device,
    )  # fmt: skip
    log.info(
        "torch threads %s, loader workers %d (%s)", threads.threads, threads.workers, threads.why
    )
    # Settings training and validation share, so the two can never disagree.
    common = dict(
        data=str(resolved_yaml), imgsz=cfg.imgsz, batch=cfg.batch, device=device,
        workers=threads.workers, plots=False, project=str(out), exist_ok=True, verbose=cfg.verbose,
    )  # fmt: skip
    train_kwargs = dict(
        name="train", epochs=plan.epochs, seed=cfg.seed, deterministic=True, amp=cfg.amp,
        val=convergence is not None, cache=False, **dict(train_args or {}),
    )  # fmt: skip
    with (
        offline_ultralytics(cache_roots=[out, cache_root()]),
        quiet_ultralytics(cfg.verbose),
        _preserved_global_state(),
        restored_threads(),
        model.active(),  # the trainer builds the model again inside yolo.train
    ):
        run = _train_then_validate(
            model.source, common, train_kwargs, policy, convergence, threads, meter, on_epoch_end
        )
    result = _result(cfg, model.name, device, plan, data, out, run)
    result.save(out / RESULT_FILE)
    log.info(
        "mAP50-95 %.4f, mAP50 %.4f in %.1f s train + %.1f s val",
        result.map50_95, result.map50, result.seconds_training, result.seconds_validation,
    )  # fmt: skip
    return result


def _convergence(cfg: TrainSettings) -> Convergence | None:
    """The in-training validation rule: stop on a plateau under ``converge``; only record
    the curve under ``epochs``/``steps`` with ``val_every`` >= 1; None without validation."""
    if cfg.curve_every == 0:
        return None
    patience = cfg.patience if cfg.budget == "converge" else None
    return Convergence(patience=patience, val_every=cfg.curve_every)


def _fresh_out_dir(out: Path, data: DataYaml) -> Path:
    """Remove a previous run's outputs from ``out``; write the resolved data YAML there."""
    for stale in ("train", "val", RESULT_FILE):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return data.write(out / "data.yaml")


@dataclass
class _Run:
    """What one Ultralytics train + val call left behind."""

    trainer: Any
    metrics: Any
    n_val_images: int
    train_energy: EnergyRecord
    val_energy: EnergyRecord
    threads: int  # torch CPU threads training ran on (read when it started)


def _train_then_validate(
    model: str,
    common: dict[str, Any],
    train_kwargs: dict[str, Any],
    policy: TrainingPolicy,
    convergence: Convergence | None,
    threads: ThreadPlan,
    meter: EnergyMeter,
    on_epoch_end: Callable[[int, int], None] | None,
) -> _Run:
    """Train (metered trainer under ``policy``), then validate the final weights once;
    each phase metered on its own, both on ``threads``. Runs inside the offline/quiet/RNG
    and thread-count guards."""
    import torch
    from ultralytics import YOLO

    from detreduce.train.trainer import make_trainer

    yolo = YOLO(model)
    threads.attach(yolo)
    ran: list[int] = []
    yolo.add_callback("on_train_start", lambda tr: ran.append(torch.get_num_threads()))
    if on_epoch_end is not None:
        yolo.add_callback(
            "on_train_epoch_end", lambda tr: on_epoch_end(int(tr.epoch) + 1, int(tr.epochs))
        )
    with meter.measure("training") as train_phase:
        yolo.train(trainer=make_trainer(policy, convergence), **common, **train_kwargs)
    trainer = yolo.trainer
    seen: list[int] = []
    val_model = YOLO(str(trainer.last))
    threads.attach(val_model)
    val_model.add_callback("on_val_end", lambda validator: seen.append(int(validator.seen)))
    with meter.measure("validation") as val_phase:
        metrics = val_model.val(**common, name="val", split="val")
    n_val = seen[-1] if seen else 0
    return _Run(trainer, metrics, n_val, train_phase.record, val_phase.record, ran[-1])


def _result(
    cfg: TrainSettings,
    model: str,
    device: str,
    plan: EpochPlan,
    data: DataYaml,
    out: Path,
    run: _Run,
) -> TrainResult:
    """The :class:`TrainResult` of a finished run: counted figures, val metrics, energy."""
    trainer, box = run.trainer, run.metrics.box
    ap50, ap = _per_class(box, data.names)
    rule = trainer.convergence
    if rule is not None and rule.points:
        curve = rule.curve(kwh_phase=run.train_energy.kwh)
    else:  # no in-training validation: the final weights' validation is the one point
        kwh = [run.train_energy.kwh, run.val_energy.kwh]
        curve = [
            {
                "epoch": int(trainer.epochs_run),
                "map50": float(box.map50),
                "map50_95": float(box.map),
                "seconds_training": float(run.train_energy.seconds),
                "seconds_validation": float(run.val_energy.seconds),
                "kwh": None if None in kwh else float(sum(kwh)),
            }
        ]
    return TrainResult(
        data_yaml=str(data.source),
        model=model,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        device=device,
        seed=cfg.seed,
        workers=int(trainer.train_loader.num_workers),
        amp=bool(trainer.amp),
        budget=plan.budget,
        fraction=plan.fraction,
        max_epoch_scale=cfg.max_epoch_scale,
        base_epochs=plan.base_epochs,
        epochs_planned=plan.epochs,
        budget_capped=plan.capped,
        class_names=list(data.names),
        n_train_images=len(trainer.train_loader.dataset),
        n_val_images=run.n_val_images,
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
        train_energy=run.train_energy,
        val_energy=run.val_energy,
        out_dir=str(out),
        weights=str(trainer.last),
        versions=_versions(),
        policy=trainer.policy_report,
        threads=run.threads,
        curve=curve,
        seconds_validation_in_training=float(getattr(trainer, "seconds_validation", 0.0)),
        stopped_early=trainer.epochs_run < plan.epochs,
    )
