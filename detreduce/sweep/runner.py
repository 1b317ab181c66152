"""Run one trial (select → export → train → validate) and the backends that run many.

A trial is a pure function of its :class:`TrialSpec` and a picklable
:class:`TrialRunner` (paths and the protocol, no open handles), and it returns one
typed results row, a :class:`~detreduce.sweep.record.RunRecord`, instead of writing
anywhere. That is what lets another backend (e.g. Ray: ``ray.remote(runner).remote(spec)``
per trial, ``ray.wait`` for results) replace :class:`LocalBackend` while the driver keeps
appending the returned records to the same :class:`~detreduce.sweep.store.ResultsStore`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from detreduce.errors import ConfigError
from detreduce.methods import get_method
from detreduce.settings import EnergySettings, TrainSettings
from detreduce.sweep.grid import Protocol as TrainProtocol
from detreduce.sweep.grid import TrialSpec
from detreduce.sweep.record import RunRecord, SelectionSummary

if TYPE_CHECKING:
    from detreduce.train import TrainResult

log = logging.getLogger("detreduce")

#: Per-trial folder under the sweep folder: ``OUT/runs/<run_id>/{data,train}``.
TRIALS_DIR = "runs"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sum(*values: float | None) -> float | None:
    """Sum, or None as soon as one part was not measured (never a silent undercount)."""
    if any(v is None or v != v for v in values):
        return None
    return float(sum(values))


def _div(value: float | None, n: int) -> float | None:
    return None if value is None else float(value) / n


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of the message), for the store."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:500]


@dataclass
class TrialRunner:
    """Everything a trial needs, as plain data; call it with a spec to get its :class:`RunRecord`.

    Attributes:
        data: the dataset path (as the user gave it).
        out: the sweep folder; trial outputs go under ``out/runs/<run_id>``.
        protocol: the training/selection protocol shared by every trial.
        format, on_error: passed to :func:`detreduce.data.load.load_dataset`.
        features_path: ``.npz`` of the train split's embeddings (None if no method uses them).
        embedding: the embedding's energy record and its charge per run that uses it.
        feature_methods: methods that read features (they carry the embedding share).
        losses_path: ``.npz`` of the proxy run's per-image losses (None if no method reads them).
        proxy: the proxy run's energy record and its charge per run that uses it.
        loss_methods: methods that read the losses (they carry the proxy run's share).
        train: how every trial trains (its seed and fraction are set per trial); None:
            the protocol's (:meth:`~detreduce.sweep.grid.Protocol.train_settings`).
        energy: the codecarbon settings of every phase's meter (None: the cfg's).
        on_epoch: ``(spec, epochs_done, epochs_total)`` after each training epoch (progress
            bars; not shipped to remote workers).
    """

    data: str
    out: str
    protocol: TrainProtocol
    format: str | None = None
    on_error: str | None = None
    features_path: str | None = None
    embedding: dict[str, Any] = field(default_factory=dict)
    feature_methods: frozenset[str] = frozenset()
    losses_path: str | None = None
    proxy: dict[str, Any] = field(default_factory=dict)
    loss_methods: frozenset[str] = frozenset()
    train: TrainSettings | None = None
    energy: EnergySettings | None = None
    on_epoch: Callable[[TrialSpec, int, int], None] | None = field(
        default=None, repr=False, compare=False
    )
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # ship paths, not loaded arrays or callbacks
        state = dict(self.__dict__)
        state["_cache"] = {}
        state["on_epoch"] = None
        return state

    # ----------------------------------------------------------- shared inputs
    def dataset(self):
        """The dataset, read once per process."""
        if "dataset" not in self._cache:
            from detreduce.data.load import load_dataset

            self._cache["dataset"] = load_dataset(
                self.data, format=self.format, on_error=self.on_error
            )
        return self._cache["dataset"]

    def features(self) -> tuple[np.ndarray | None, tuple[np.ndarray, ...] | None]:
        """Image embeddings of the train split and, at box level, (box_image, box_class, box)."""
        if self.features_path is None:
            return None, None
        if "features" not in self._cache:
            with np.load(self.features_path) as npz:
                image = npz["image"]
                box = (npz["box_image"], npz["box_class"], npz["box"]) if "box" in npz else None
            self._cache["features"] = (image, box)
        return self._cache["features"]

    def losses(self) -> np.ndarray | None:
        """The proxy run's (n_train, epochs) per-image losses (None without a proxy run)."""
        if self.losses_path is None:
            return None
        if "losses" not in self._cache:
            with np.load(self.losses_path) as npz:
                self._cache["losses"] = npz["losses"].astype(np.float64)
        return self._cache["losses"]

    # ------------------------------------------------------------------ trial
    def __call__(self, spec: TrialSpec) -> RunRecord:
        """Run one trial; never raises for a failed trial (the record says ``status=failed``)."""
        record = self._base_row(spec)
        t0 = time.perf_counter()
        try:
            record = replace(self._run(spec, record), status="ok")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed trial is data, the sweep goes on
            log.error("run %s failed: %s", spec.run_id, one_line(exc))
            log.debug("run %s traceback", spec.run_id, exc_info=True)
            record = replace(record, status="failed", error=one_line(exc))
        seconds = record.seconds if record.seconds is not None else time.perf_counter() - t0
        return replace(record, finished_at=_now(), seconds=seconds)

    def _base_row(self, spec: TrialSpec) -> RunRecord:
        """What is known before the trial runs (all a failed trial's record holds)."""
        p = self.protocol
        return RunRecord(
            run_id=spec.run_id,
            method=spec.method,
            fraction=spec.fraction,
            seed=spec.seed,
            status="running",
            model=p.model,
            imgsz=p.imgsz,
            batch=p.batch,
            device=p.device,
            budget=p.budget,
            backbone=p.backbone if spec.method in self.feature_methods else "",
            protocol=spec.protocol_key,
            started_at=_now(),
        )

    def _run(self, spec: TrialSpec, record: RunRecord) -> RunRecord:
        """Select → export → train → validate; ``record`` completed with what each phase gave."""
        from detreduce.energy import EnergyMeter

        run_dir = Path(self.out) / TRIALS_DIR / spec.run_id
        if run_dir.exists():  # left over by a run killed in flight: start it afresh
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        ds = self.dataset()
        train_rows = ds.split_indices("train")
        if len(train_rows) == 0:
            raise ConfigError(f"{self.data}: no train split to reduce")

        with EnergyMeter(self.energy).measure("selection") as sel_phase:
            exported = self._select(spec, ds, run_dir / "data")
        kept, data_yaml, selection = exported.kept, exported.data_yaml, exported.selection
        method = get_method(spec.method)
        summary = (  # a training policy keeps every image: figures of the full split
            SelectionSummary.full_data(selection.balance)
            if method.kind == "training"
            else SelectionSummary.from_figures(
                selection.figures, level=self.protocol.level, balance=selection.balance
            )
        )
        sel = sel_phase.record
        achieved = len(kept) / len(train_rows)
        train = self._train(spec, data_yaml, achieved, run_dir / "train")
        emb = self._embedding_share(spec)
        proxy_kwh, proxy_seconds = self._proxy_share(spec)
        sel = replace(  # a loss-based method's selection includes its share of the proxy run
            sel,
            kwh=_sum(sel.kwh, proxy_kwh) if proxy_kwh else sel.kwh,
            seconds=sel.seconds + (proxy_seconds or 0.0),
        )
        total = train.energy  # training + validation
        return replace(
            record,
            map50=train.map50,
            map50_95=train.map50_95,
            precision=train.precision,
            recall=train.recall,
            kwh_total=_sum(emb["kwh_embedding"], sel.kwh, total.kwh),
            kwh_embedding=emb["kwh_embedding"],
            kwh_embedding_whole=emb["kwh_embedding_whole"],
            kwh_selection=sel.kwh,
            kwh_training=train.train_energy.kwh,
            kwh_validation=train.val_energy.kwh,
            kwh_cpu=_sum(emb["kwh_embedding_cpu"], sel.cpu_kwh, total.cpu_kwh),
            kwh_gpu=_sum(emb["kwh_embedding_gpu"], sel.gpu_kwh, total.gpu_kwh),
            kwh_ram=_sum(emb["kwh_embedding_ram"], sel.ram_kwh, total.ram_kwh),
            co2_kg=_sum(sel.kg_co2, total.kg_co2),
            energy_mode=train.energy_mode or sel.cpu_mode,
            seconds=_sum(emb["seconds_embedding"], sel.seconds, total.seconds),
            seconds_embedding=emb["seconds_embedding"],
            seconds_selection=sel.seconds,
            seconds_training=train.seconds_training,
            seconds_validation=train.seconds_validation,
            budget=train.budget or self.protocol.budget,
            epochs=train.epochs,
            steps=train.steps,
            images_seen=train.images_seen,
            n_train=len(train_rows),
            n_kept=len(kept),
            eps=summary.eps,
            class_share_tv=summary.class_share_tv,
            device=train.device or self.protocol.device,
            balance=summary.balance,
            per_class_ap=dict(train.per_class_ap),
            figures={
                **summary.to_figures(),
                "budget_capped": train.budget_capped,
                "stopped_early": train.stopped_early,
                "seconds_validation_in_training": train.seconds_validation_in_training,
                "threads": train.threads,
                "workers": train.workers,
                "country": total.country_iso_code,
                **(
                    {"kwh_proxy_share": proxy_kwh, "kwh_proxy_whole": self.proxy.get("kwh")}
                    if proxy_kwh is not None
                    else {}
                ),
                **({"policy": train.policy} if method.kind == "training" or method.policy else {}),
            },
            run_dir=f"{TRIALS_DIR}/{spec.run_id}",  # relative to the sweep folder: portable
            curve=list(train.curve),
        )

    def _proxy_share(self, spec: TrialSpec) -> tuple[float | None, float | None]:
        """This run's share (kWh, seconds) of the sweep's one proxy run: whole / runs that
        use losses; (None, None) for a method that does not read them."""
        if spec.method not in self.loss_methods or not self.proxy:
            return None, None
        n = max(1, int(self.proxy.get("charged_runs", 1)))
        return _div(self.proxy.get("kwh"), n), _div(self.proxy.get("seconds"), n)

    def _embedding_share(self, spec: TrialSpec) -> dict[str, Any]:
        """This run's share of the sweep's one embedding: whole / runs that use features.

        Splitting keeps the sweep's total honest (the embedding counted once); the
        whole cost is recorded too, for a user who would embed for one reduction only.
        """
        keys = ("kwh", "kwh_cpu", "kwh_gpu", "kwh_ram", "seconds")
        if spec.method not in self.feature_methods or not self.embedding:
            share = dict.fromkeys(keys, 0.0)
            whole = 0.0
        else:
            n = max(1, int(self.embedding.get("charged_runs", 1)))
            share = {k: _div(self.embedding.get(k), n) for k in keys}
            whole = self.embedding.get("kwh")
        return {
            "kwh_embedding": share["kwh"],
            "kwh_embedding_cpu": share["kwh_cpu"],
            "kwh_embedding_gpu": share["kwh_gpu"],
            "kwh_embedding_ram": share["kwh_ram"],
            "seconds_embedding": share["seconds"],
            "kwh_embedding_whole": whole,
        }

    def _select(self, spec: TrialSpec, ds, out_dir: Path):
        """Select and export one trial's train split (the same path as ``detreduce reduce``).

        Embeddings, when the sweep has them, are passed to every method (methods that
        ignore them still get an ε), so ε is comparable across methods.
        """
        from detreduce.selection import select_and_export

        image, box = self.features()
        method = get_method(spec.method)
        selection = method.selection  # kcenter of kcenter+infobatch
        params = dict(self.protocol.params.get(selection, {}))
        if method.uses_losses and self.losses() is not None:
            params["losses"] = self.losses()  # the proxy run's real YOLO losses
        return select_and_export(
            ds,
            out_dir,
            method=selection,
            fraction=spec.fraction,
            seed=spec.seed,
            balance=self.protocol.balance_settings(),
            level=self.protocol.level,
            params=params or None,
            features=image,
            box_features=box,
            backbone=self.protocol.backbone,
            overwrite=True,
        )

    def _train(
        self, spec: TrialSpec, data_yaml: Path, fraction: float, out_dir: Path
    ) -> TrainResult:
        from detreduce.energy import EnergyMeter
        from detreduce.train import train_yolo

        settings = self.train if self.train is not None else self.protocol.train_settings()
        method = get_method(spec.method)
        # A training method is a policy inside the trainer: a fresh one per trial (it is
        # stateful), with the sweep's parameters for it; a combination (kcenter+infobatch)
        # trains its statically reduced split under its policy.
        name = method.name if method.kind == "training" else method.policy
        policy = get_method(name).create(**self.protocol.params.get(name, {})) if name else None
        result = train_yolo(
            data_yaml,
            out_dir=out_dir,
            settings=settings.replace(seed=spec.seed, fraction=fraction),
            policy=policy,
            train_args=self.protocol.train_args or None,
            energy=EnergyMeter(self.energy),
            on_epoch_end=None if self.on_epoch is None else partial(self.on_epoch, spec),
        )
        return result


# ---------------------------------------------------------------------- backends
class Backend(Protocol):
    """Runs trials and yields their records as they finish (in any order)."""

    name: str

    def run(
        self,
        trials: Sequence[TrialSpec],
        runner: Callable[[TrialSpec], RunRecord],
        on_start: Callable[[TrialSpec], None] | None = None,
    ) -> Iterator[RunRecord]: ...


class LocalBackend:
    """One trial after another in this process (the right choice for one machine/GPU)."""

    name = "local"

    def run(
        self,
        trials: Sequence[TrialSpec],
        runner: Callable[[TrialSpec], RunRecord],
        on_start: Callable[[TrialSpec], None] | None = None,
    ) -> Iterator[RunRecord]:
        for spec in trials:
            if on_start is not None:
                on_start(spec)
            yield runner(spec)


def _ray_backend(settings: Any) -> Backend:
    from detreduce.sweep.ray_backend import RayBackend

    return RayBackend(
        address=getattr(settings, "ray_address", None),
        cpus_per_trial=float(getattr(settings, "cpus_per_trial", 1)),
        gpus_per_trial=float(getattr(settings, "gpus_per_trial", 0)),
    )


#: Backend name → factory taking the sweep settings (``ray_address``, ``*_per_trial``).
BACKENDS: dict[str, Callable[[Any], Backend]] = {
    "local": lambda settings=None: LocalBackend(),
    "ray": _ray_backend,
}


def get_backend(name: str, settings: Any = None) -> Backend:
    """A backend by name, built from the sweep settings; an unknown name fails with the
    list of known ones."""
    key = name.strip().lower()
    if key not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(sorted(BACKENDS))}, got {name!r}")
    return BACKENDS[key](settings)
