"""Sweeps: methods × fractions × seeds, plus the full-data and random baselines, resumable.

Layout of a sweep folder ``OUT``:

- ``sweep.json``: the config; a rerun with another protocol (how runs select and
  train) stops with a message (``overwrite=True`` starts afresh), one with the same
  protocol and other methods, fractions or seeds extends the sweep (finished runs are
  kept; the file lists the union of the grids and every command).
- ``embedding.json`` + ``embeddings.npz``: the train split embedded once (only when a
  method uses features), with the energy it cost and how that energy is charged.
- ``results.csv``: one row per finished run, appended as each run ends (see
  :mod:`detreduce.sweep.store`); a rerun skips the run ids already there.
- ``runs/<run_id>/``: each run's exported split (``data/``) and training output (``train/``).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detreduce import __version__
from detreduce.config import output_root
from detreduce.data.atomic import atomic_path, write_text
from detreduce.energy import EnergyMeter
from detreduce.errors import ConfigError, OutputExistsError
from detreduce.methods import get_method
from detreduce.settings import (
    BalanceSettings,
    DataSettings,
    EnergySettings,
    FeatureSettings,
    SweepSettings,
    TrainSettings,
)
from detreduce.sweep.grid import FULL, Protocol, TrialSpec, build_grid
from detreduce.sweep.runner import TRIALS_DIR, Backend, TrialRunner, get_backend
from detreduce.sweep.store import RESULTS_NAME, ResultsStore
from detreduce.train.budget import ULTRALYTICS_NBS, few_steps_warning, plan_epochs

log = logging.getLogger("detreduce")

CONFIG_NAME = "sweep.json"
EMBEDDING_NAME = "embedding.json"
FEATURES_NAME = "embeddings.npz"
#: Files and folders a sweep writes (the only ones ``overwrite`` removes).
OWNED = (CONFIG_NAME, EMBEDDING_NAME, FEATURES_NAME, RESULTS_NAME, TRIALS_DIR, "plots", "report.md")
#: Keys of sweep.json that must match for a rerun to resume.


@dataclass(frozen=True)
class SweepEvent:
    """A progress event: ``embed`` (before embedding), ``proxy`` (before the loss-scoring
    proxy run), ``skip``, ``start``, ``epoch`` or ``done``.

    ``index`` is the run's number (1-based) out of ``total``; ``row`` is the results row
    (:meth:`~detreduce.sweep.record.RunRecord.to_row`) for ``done`` and
    ``{"epoch": done, "epochs": total}`` for ``epoch``.
    """

    kind: str
    index: int
    total: int
    spec: TrialSpec | None = None
    row: dict[str, Any] | None = None


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: where its results are and how many runs ran, failed, were skipped."""

    out: Path
    results: Path
    total: int
    ran: int
    skipped: int
    failed: int


def uses_features(method: str) -> bool:
    """Whether a method reads embeddings (the catalog's trait; unknown names raise)."""
    return get_method(method).uses_features


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def _prepare_out(out: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Create ``out`` or check it holds a sweep of the same protocol; with ``overwrite``
    start afresh. The same protocol with other methods, fractions or seeds extends the
    sweep: finished runs are kept, ``sweep.json`` lists the union of the grids."""
    if overwrite:
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    elif _check_resumable(out, config):
        old = _old_config(out) or {}
        grid = ("methods", "fractions", "seeds")
        if all(_canon(old.get(k), k) == _canon(config.get(k), k) for k in grid):
            return
        merged = dict(old)
        for key in grid:
            merged[key] = list(dict.fromkeys([*old.get(key, []), *config.get(key, [])]))
            if key != "methods":
                merged[key] = sorted(merged[key])
        added = {k: [v for v in config[k] if v not in old.get(k, [])] for k in grid}
        log.info(
            "extending the sweep in %s (same protocol): %s",
            out,
            ", ".join(f"+{k} {v}" for k, v in added.items() if v) or "a subset of its grid",
        )
        merged["runs"] = max(int(old.get("runs", 0)), int(config.get("runs", 0)))
        merged.setdefault("commands", [old.get("command")] if old.get("command") else [])
        # a resume with a command already recorded adds nothing to the record
        merged["commands"] = list(dict.fromkeys([*merged["commands"], config.get("command")]))
        _write_json(out / CONFIG_NAME, merged)
        return
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG_NAME, config)


def _old_config(out: Path) -> dict[str, Any] | None:
    path = out / CONFIG_NAME
    return json.loads(path.read_text()) if path.exists() else None


def _check_resumable(out: Path, config: dict[str, Any]) -> bool:
    """True when ``out`` holds this sweep (a resume); raises when it holds another one."""
    old = _old_config(out)
    if old is None:
        if out.exists() and (out / RESULTS_NAME).exists():
            raise OutputExistsError(
                f"{out} holds results.csv but no {CONFIG_NAME}; choose another --out or pass "
                "--overwrite"
            )
        return False
    po, pn = old.get("protocol", {}), config["protocol"]
    if _canon(po) != _canon(pn):
        changed = [k for k in {**po, **pn} if _canon(po.get(k)) != _canon(pn.get(k))]
        details = ", ".join(f"{k}: {po.get(k)} → {pn.get(k)}" for k in changed)
        if _is_legacy(old) and "dataset" in changed:
            raise OutputExistsError(
                f"{out} was written by an older detreduce with the dataset at "
                f"{po.get('dataset')} ({details}): resume it once from there (it is then "
                "upgraded to resume from anywhere), or choose another --out"
            )
        raise OutputExistsError(
            f"{out} holds a sweep with another protocol ({details}); rerun with the same "
            "training and selection options to resume or extend it, choose another --out, "
            "or pass --overwrite to start afresh"
        )
    return True


def _is_legacy(config: dict[str, Any] | None) -> bool:
    """A store written before protocols were location-free: its protocol names the
    dataset's path and a fingerprint of absolute image paths (see :class:`Protocol`)."""
    return bool(config and config.get("protocol", {}).get("dataset"))


def _upgrade_legacy(out: Path, protocol: Protocol, legacy_fingerprint: str) -> str:
    """Make a legacy store portable once it has resumed from where it was written.

    ``sweep.json`` gets the location-free protocol; its ``protocol_key`` (in every run id
    and row) stays, and the embedding and proxy records move to the content fingerprint,
    so nothing is recomputed. Returns the key the store's run ids carry.
    """
    config = _old_config(out) or {}
    key = str(config["protocol_key"])
    config["protocol"] = protocol.to_dict()
    config["protocol_key_note"] = (
        f"run ids keep {key}, the key of the protocol as first recorded (with the dataset "
        "path); the protocol above is the location-free one a resume compares"
    )
    _write_json(out / CONFIG_NAME, config)
    for name in (EMBEDDING_NAME, PROXY_NAME):
        path = out / name
        info = json.loads(path.read_text()) if path.exists() else {}
        if info.get("fingerprint") == legacy_fingerprint:
            _write_json(path, {**info, "fingerprint": protocol.fingerprint})
    log.info("%s: upgraded to a location-free protocol; it now resumes from anywhere", out)
    return key


def _canon(value: Any, key: str = "") -> str:
    """Comparable form of a config value; the grid lists compare as sets (order is cosmetic)."""
    if key in ("methods", "fractions", "seeds") and isinstance(value, list):
        value = sorted(value, key=str)
    return json.dumps(value, sort_keys=True, default=str)


def _embed_once(
    runner_data: Any,
    out: Path,
    protocol: Protocol,
    features: FeatureSettings,
    charged_runs: int,
    on_event: Callable[[SweepEvent], None] | None,
) -> tuple[Path, dict[str, Any]]:
    """Embed the train split once per sweep folder (reused on resume, so charged once).

    The features cache is bypassed on purpose: a cache hit would cost ~0 kWh and hide
    the price a user pays the first time; the sweep folder keeps its own copy instead.
    The embedding's kWh is split evenly over the ``charged_runs`` runs that read it.
    """
    info_path, feats_path = out / EMBEDDING_NAME, out / FEATURES_NAME
    if info_path.exists() and feats_path.exists():
        info = json.loads(info_path.read_text())
        if (
            info.get("fingerprint") == protocol.fingerprint
            and info.get("backbone") == protocol.backbone
            and info.get("settings", {}) == protocol.settings.get("features", {})
        ):
            log.info("reusing the sweep's embeddings (%s)", feats_path)
            return feats_path, info
    from detreduce.features import embed_dataset

    if on_event:
        on_event(SweepEvent("embed", 0, 0))
    ds = runner_data.dataset()
    train = ds.split("train")
    level = "both" if protocol.level == "box" else "image"
    with EnergyMeter(runner_data.energy).measure("embedding") as phase:
        emb = embed_dataset(
            train,
            settings=features,
            level=level,
            progress=False,
            cache=False,  # measure what embedding really costs, not a cache read
        )
    r = phase.record
    if emb.worker_energy is not None:  # Ray actors metered their own processes
        from detreduce.energy import combine

        r = combine([r, replace(emb.worker_energy, seconds=0.0)], "embedding")
    arrays = {"image": np.asarray(emb.image, dtype=np.float32)}
    if level == "both":
        arrays["box"] = np.asarray(emb.box, dtype=np.float32)
        arrays["box_image"] = np.asarray(emb.box_image, dtype=np.int64)
        arrays["box_class"] = np.asarray(emb.box_class, dtype=np.int64)
    with atomic_path(feats_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    info = {
        "backbone": protocol.backbone,
        "fingerprint": protocol.fingerprint,
        "n_images": int(len(arrays["image"])),
        "dim": int(arrays["image"].shape[1]),
        "kwh": r.kwh,
        "kwh_cpu": r.cpu_kwh,
        "kwh_gpu": r.gpu_kwh,
        "kwh_ram": r.ram_kwh,
        "seconds": r.seconds,
        "energy_mode": r.cpu_mode,
        "gpu_mode": r.gpu_mode,
        "charged_runs": charged_runs,
        "embedding_backend": features.backend,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if protocol.settings.get("features"):
        info["settings"] = protocol.settings["features"]
    _write_json(info_path, info)
    return feats_path, info


PROXY_NAME = "proxy.json"
LOSSES_NAME = "proxy_losses.npz"


def _proxy_once(
    runner_data: Any,
    out: Path,
    protocol: Protocol,
    train: TrainSettings,
    epochs: int,
    charged_runs: int,
    on_event: Callable[[SweepEvent], None] | None,
) -> tuple[Path, dict[str, Any]]:
    """Score every train image by its YOLO loss once per sweep folder (a short real
    training of the protocol's model, :mod:`detreduce.train.scores`); reused on resume.
    Its kWh is split evenly over the ``charged_runs`` runs of loss-based methods."""
    info_path, losses_path = out / PROXY_NAME, out / LOSSES_NAME
    wanted = {"fingerprint": protocol.fingerprint, "model": train.model, "epochs": epochs,
              "imgsz": train.imgsz, "batch": train.batch}  # fmt: skip
    if info_path.exists() and losses_path.exists():
        info = json.loads(info_path.read_text())
        if all(info.get(k) == v for k, v in wanted.items()):
            log.info("reusing the sweep's proxy losses (%s)", losses_path)
            return losses_path, info
    from detreduce.selection import select_and_export
    from detreduce.train.datayaml import resolve_data_yaml
    from detreduce.train.scores import proxy_losses

    if on_event:
        on_event(SweepEvent("proxy", 0, 0))
    work = out / "proxy"
    exported = select_and_export(
        runner_data.dataset(), work / "data", method="full", fraction=1.0, seed=0,
        balance="none", overwrite=True,
    )  # fmt: skip
    lists = resolve_data_yaml(exported.data_yaml).train
    files = [ln.strip() for ln in Path(lists[0]).read_text().splitlines() if ln.strip()]
    settings = train.replace(epochs=epochs, budget="epochs", fraction=1.0, seed=0, val_every=0)
    log.info(
        "proxy run: %d epochs of %s to score every train image by its loss", epochs, train.model
    )
    proxy = proxy_losses(
        exported.data_yaml, files, out_dir=work / "train", settings=settings,
        energy=EnergyMeter(runner_data.energy), train_args=protocol.train_args or None,
    )  # fmt: skip
    with atomic_path(losses_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, losses=proxy.losses.astype(np.float32))
    r = proxy.result
    total = r.energy
    info = {
        **wanted,
        "n_images": int(len(proxy.losses)),
        "kwh": total.kwh,
        "seconds": total.seconds,
        "images_seen": r.images_seen,
        "charged_runs": charged_runs,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json(info_path, info)
    return losses_path, info


def _warn_if_too_few_steps(
    train: TrainSettings, train_args: dict[str, Any], n_train: int, fraction: float
) -> None:
    """Warn once when the sweep's smallest run would be trained for too few steps."""
    n = max(1, math.ceil(fraction * n_train))
    plan = plan_epochs(  # under converge: its max_epochs (a run may stop sooner)
        train.epochs,
        budget=train.budget,
        fraction=fraction,
        max_epoch_scale=train.max_epoch_scale,
        max_epochs=train.max_epochs,
    )
    nbs = int(train_args.get("nbs", ULTRALYTICS_NBS))
    what = f"the smallest run at fraction {fraction:g}"
    text = few_steps_warning(n, plan.epochs, train.batch, nbs, train.min_optimizer_steps, what)
    if text:
        log.warning(text)


def _check_per_run(train: TrainSettings) -> None:
    """A sweep sets seed and fraction per run: a changed value in ``train`` would be ignored."""
    given = train.changed(("seed", "fraction"))
    if given:
        raise ConfigError(
            f"run_sweep sets train {', '.join(given)} per run (seeds from sweep.seeds, the "
            f"fraction from the selection); got train settings {given}: give seeds=[...] in "
            "the sweep settings instead"
        )


def run_sweep(
    data: str | Path,
    out: str | Path | None = None,
    *,
    sweep: SweepSettings | Mapping[str, Any] | None = None,
    train: TrainSettings | Mapping[str, Any] | None = None,
    features: FeatureSettings | Mapping[str, Any] | None = None,
    balance: BalanceSettings | Mapping[str, Any] | str | None = None,
    energy: EnergySettings | Mapping[str, Any] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    train_args: dict[str, Any] | None = None,
    format: str | None = None,
    on_error: str | None = None,
    overwrite: bool = False,
    on_event: Callable[[SweepEvent], None] | None = None,
    command: str | None = None,
) -> SweepResult:
    """Run (or resume) a sweep and return where its results are.

    Per seed: the full-data baseline, then every method × fraction (the random baseline
    is always added). Per run: select → export → train → validate, each phase's energy
    measured; the row is appended to ``OUT/results.csv`` as soon as the run ends. Runs
    already in the store (status ``ok``) are skipped; failed runs are recorded with
    their one-line error and retried on the next rerun when ``sweep.retry_failed``.

    Settings (each a settings object, a mapping of its keys, or None for the cfg
    defaults; built once through its class's ``build``, so bad values fail here,
    before any data is read):

    - ``sweep`` (:class:`~detreduce.settings.SweepSettings`): methods, fractions,
      seeds, level (select on image or box embeddings), backend, retry_failed;
    - ``train`` (:class:`~detreduce.settings.TrainSettings`): how every run trains;
      ``seed`` and ``fraction`` are set per run (changing them here raises);
    - ``features`` (:class:`~detreduce.settings.FeatureSettings`): how the train split
      is embedded, once per sweep, when a method reads embeddings; its ``level`` and
      ``cache`` are set by the sweep; None embeds with the defaults on ``train.device``;
    - ``balance`` (:class:`~detreduce.settings.BalanceSettings`, or just the mode);
    - ``energy`` (:class:`~detreduce.settings.EnergySettings`): the codecarbon meter of
      every phase (``cpu_watts``: the CPU power on hosts without RAPL, recorded in each
      row's ``energy_mode``, e.g. ``cpu_load@65W``).

    ``params`` maps a method to its reducer parameters; ``train_args`` passes other
    Ultralytics train arguments (e.g. ``{"nbs": 16}``) to every run; both are part of
    the protocol, as are the settings that change what a run measures
    (:class:`~detreduce.sweep.grid.Protocol`).
    """
    from detreduce.data.load import load_dataset

    plan = _Plan.build(data, sweep, train, features, balance, energy, params, train_args)
    reading = DataSettings.build(on_error=on_error)
    runner_backend = get_backend(plan.sweep.backend, plan.sweep)
    out = Path(out) if out is not None else output_root() / f"sweep-{Path(data).stem}"
    out = out.absolute()
    old = None if overwrite else _old_config(out)
    if not overwrite:  # another sweep in OUT fails before the dataset is read
        recorded = (old or {}).get("protocol", {})
        legacy_at = plan.data if _is_legacy(old) else ""
        early = plan.protocol(recorded.get("fingerprint", ""), dataset=legacy_at)
        _check_resumable(out, plan.comparable(early))

    ds = load_dataset(data, format=format, settings=reading)
    n_train = len(ds.split_indices("train"))
    if n_train == 0:
        raise ConfigError(f"{data}: the dataset has no train split to reduce")
    protocol = plan.protocol(ds.content_fingerprint())
    key = protocol.key()
    if _is_legacy(old):
        _check_resumable(out, plan.comparable(plan.protocol(ds.fingerprint(), dataset=plan.data)))
        key = _upgrade_legacy(out, protocol, ds.fingerprint())
    elif old:
        key = str(old.get("protocol_key") or key)  # an upgraded store keeps its run ids
    train, features, energy = plan.train, plan.features, plan.energy
    _warn_if_too_few_steps(train, protocol.train_args, n_train, min(plan.sweep.fractions))
    grid = build_grid(plan.sweep.methods, plan.sweep.fractions, plan.sweep.seeds, key)
    config = {
        "data": str(data),  # as given (the protocol, not this, says which data was measured)
        **plan.comparable(protocol),
        "protocol_key": key,
        "backend": runner_backend.name,
        "n_train": n_train,
        "n_val": int(len(ds.split_indices("val"))),
        "runs": len(grid),
        "command": command,
        "detreduce_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _prepare_out(out, config, overwrite)

    feature_methods = frozenset(m for m in plan.grid_methods if uses_features(m))
    loss_methods = frozenset(m for m in plan.grid_methods if get_method(m).uses_losses)
    runner = TrialRunner(
        data=str(data),
        out=str(out),
        protocol=protocol,
        format=format,
        on_error=on_error,
        feature_methods=feature_methods,
        loss_methods=loss_methods,
        train=train,
        energy=energy,
    )
    runner._cache["dataset"] = ds
    store = ResultsStore(out / RESULTS_NAME)
    todo = _pending(grid, store, plan.sweep.retry_failed, on_event, out)
    if feature_methods and any(s.method in feature_methods for s in todo):
        charged = sum(1 for s in grid if s.method in feature_methods)
        if plan.sweep.backend == "ray":  # the embedding runs on the same cluster as the trials
            features = replace(features, backend="ray", ray_address=plan.sweep.ray_address)
        feats, info = _embed_once(runner, out, protocol, features, charged, on_event)
        runner.features_path, runner.embedding = str(feats), info
    if loss_methods and any(s.method in loss_methods for s in todo):
        charged = sum(1 for s in grid if s.method in loss_methods)
        path, info = _proxy_once(
            runner, out, protocol, train, plan.sweep.proxy_epochs, charged, on_event
        )
        runner.losses_path, runner.proxy = str(path), info
    ran, failed = _drive(todo, len(grid), runner, runner_backend, store, on_event)
    total = len(grid)
    return SweepResult(
        out=out,
        results=store.path,
        total=total,
        ran=ran,
        skipped=total - len(todo),
        failed=failed,
    )


def _pending(
    grid: list[TrialSpec],
    store: ResultsStore,
    retry_failed: bool,
    on_event: Callable[[SweepEvent], None] | None,
    out: Path,
) -> list[TrialSpec]:
    """The trials still to run (the store's finished ones are skipped, and announced)."""
    done = store.finished(("ok",) if retry_failed else ("ok", "failed"))
    todo = [s for s in grid if s.run_id not in done]
    total = len(grid)
    log.info(
        "sweep %s: %d runs (%d finished before, %d to run)",
        out, total, total - len(todo), len(todo),
    )  # fmt: skip
    for i, spec in enumerate(s for s in grid if s.run_id in done):
        if on_event:
            on_event(SweepEvent("skip", i + 1, total, spec))
    return todo


def _drive(
    todo: list[TrialSpec],
    total: int,
    runner: TrialRunner,
    backend: Backend,
    store: ResultsStore,
    on_event: Callable[[SweepEvent], None] | None,
) -> tuple[int, int]:
    """Run ``todo`` on ``backend``; append each record as it arrives (only the driver
    writes the store). Returns (runs done, runs failed)."""
    index = total - len(todo)
    ran = failed = 0
    by_id = {s.run_id: s for s in todo}
    if on_event is not None:
        runner.on_epoch = lambda spec, done, n: on_event(
            SweepEvent("epoch", index + 1, total, spec, {"epoch": done, "epochs": n})
        )

    def started(spec: TrialSpec) -> None:
        if on_event:
            on_event(SweepEvent("start", index + 1, total, spec))

    for record in backend.run(todo, runner, on_start=started):
        row = record.to_row()
        store.append(row)
        index += 1
        ran += 1
        failed += record.status != "ok"
        if on_event:
            on_event(SweepEvent("done", index, total, by_id.get(record.run_id), row))
    return ran, failed


@dataclass(frozen=True)
class _Plan:
    """A sweep's settings, each built (and checked) once, and what follows from them
    before any data is read: the methods of the grid and the protocol."""

    data: str
    sweep: SweepSettings
    train: TrainSettings
    features: FeatureSettings
    balance: BalanceSettings
    energy: EnergySettings
    params: dict[str, dict[str, Any]] | None
    train_args: dict[str, Any] | None

    @classmethod
    def build(
        cls,
        data: str | Path,
        sweep: Any,
        train: Any,
        features: Any,
        balance: Any,
        energy: Any,
        params: dict[str, dict[str, Any]] | None,
        train_args: dict[str, Any] | None,
    ) -> _Plan:
        """Each settings object from an object, a mapping of its keys or None (defaults)."""
        train = TrainSettings.build(train)
        _check_per_run(train)
        return cls(
            data=str(Path(data).absolute()),
            sweep=SweepSettings.build(sweep),
            train=train,
            features=FeatureSettings.build(
                features if features is not None else {"device": train.device}
            ),
            balance=BalanceSettings.build(balance),
            energy=EnergySettings.build(energy),
            params=params,
            train_args=train_args,
        )

    @property
    def grid_methods(self) -> list[str]:
        """Every reduced method the grid runs (random added, full data not listed)."""
        grid = build_grid(self.sweep.methods, self.sweep.fractions, self.sweep.seeds, "")
        return list(dict.fromkeys(s.method for s in grid if s.method != FULL))

    def protocol(self, fingerprint: str, dataset: str = "") -> Protocol:
        """The sweep's protocol on ``fingerprint``; ``dataset`` (a path) only to compare
        with a legacy store, which recorded one."""
        needs_features = any(uses_features(m) for m in self.sweep.methods)
        return Protocol.from_settings(
            dataset=dataset,
            fingerprint=fingerprint,
            sweep=self.sweep,
            train=self.train,
            features=self.features if needs_features else None,
            balance=self.balance,
            params=self.params,
            train_args=self.train_args,
        )

    def comparable(self, protocol: Protocol) -> dict[str, Any]:
        """The keys of ``sweep.json`` that must match for a rerun to resume."""
        return {
            "methods": self.grid_methods,
            "fractions": list(self.sweep.fractions),
            "seeds": list(self.sweep.seeds),
            "protocol": protocol.to_dict(),
        }
