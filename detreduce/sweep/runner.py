"""Run one trial (select → export → train → validate) and the backends that run many.

A trial is a pure function of its :class:`TrialSpec` and a picklable
:class:`TrialRunner` (paths and the protocol, no open handles), and it returns one
results row (a dict) instead of writing anywhere. That is what lets another backend
(e.g. Ray: ``ray.remote(runner).remote(spec)`` per trial, ``ray.wait`` for results)
replace :class:`LocalBackend` while the driver keeps appending the returned rows to
the same :class:`~detreduce.sweep.store.ResultsStore`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from detreduce.errors import ConfigError
from detreduce.sweep.grid import FULL, TrialSpec
from detreduce.sweep.grid import Protocol as TrainProtocol

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


def _train_fields(d: dict[str, Any]) -> dict[str, Any]:
    """The store's names for the fields of :meth:`detreduce.train.TrainResult.to_dict`."""
    cpu, gpu = d.get("cpu_power_mode") or "", d.get("gpu_power_mode") or ""
    return {
        "map50": d.get("map50"),
        "map50_95": d.get("map50_95"),
        "precision": d.get("precision"),
        "recall": d.get("recall"),
        "kwh_training": d.get("train_kwh"),
        "kwh_validation": d.get("val_kwh"),
        "kwh_cpu": d.get("kwh_cpu"),
        "kwh_gpu": d.get("kwh_gpu"),
        "kwh_ram": d.get("kwh_ram"),
        "co2_kg": d.get("kg_co2"),
        "energy_mode": cpu if gpu in ("", "none") else f"{cpu}+{gpu}",
        "seconds_training": d.get("train_seconds"),
        "seconds_validation": d.get("val_seconds"),
        "budget": d.get("budget"),
        "epochs": d.get("epochs_run", d.get("epochs")),
        "steps": d.get("optimizer_steps"),
        "images_seen": d.get("images_seen"),
        "per_class_ap": d.get("ap50_95_per_class"),
        "budget_capped": d.get("budget_capped"),
        "country": d.get("country_iso_code"),
        "device": d.get("device"),
    }


def _compact(figures: dict[str, Any]) -> dict[str, Any]:
    """The selection figures worth a results column (histograms stay in selection.json)."""
    out: dict[str, Any] = {"balance": figures.get("balance")}
    for key in ("box_share", "box_count_hist", "box_size_hist"):
        if isinstance(figures.get(key), dict):
            out[f"{key}_tv"] = figures[key].get("tv")
    if figures.get("missing_classes"):
        out["missing_classes"] = figures["missing_classes"]
    for key in ("epsilon", "epsilon_box"):
        if isinstance(figures.get(key), dict):
            out[f"{key}_per_class"] = figures[key].get("per_class")
    return out


def _epsilon(figures: dict[str, Any], level: str) -> float | None:
    """Overall ε of a selection's figures (box level when the sweep selects on crops)."""
    block = figures.get("epsilon_box" if level == "box" else "epsilon") or figures.get("epsilon")
    if not block:
        return None
    value = block.get("overall")
    return float(value) if value is not None else None  # "inf" parses to inf


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of the message), for the store."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:500]


@dataclass
class TrialRunner:
    """Everything a trial needs, as plain data; call it with a spec to get a results row.

    Attributes:
        data: the dataset path (as the user gave it).
        out: the sweep folder; trial outputs go under ``out/runs/<run_id>``.
        protocol: the training/selection protocol shared by every trial.
        format, on_error: passed to :func:`detreduce.data.load.load_dataset`.
        features_path: ``.npz`` of the train split's embeddings (None if no method uses them).
        embedding: the embedding's energy record and its charge per run that uses it.
        feature_methods: methods that read features (they carry the embedding share).
        cpu_watts: CPU power for codecarbon on hosts without RAPL (None: the config's).
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
    cpu_watts: float | None = None
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

    # ------------------------------------------------------------------ trial
    def __call__(self, spec: TrialSpec) -> dict[str, Any]:
        """Run one trial; never raises for a failed trial (the row says ``status=failed``)."""
        row = self._base_row(spec)
        t0 = time.perf_counter()
        try:
            row.update(self._run(spec))
            row["status"] = "ok"
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed trial is data, the sweep goes on
            log.error("run %s failed: %s", spec.run_id, one_line(exc))
            log.debug("run %s traceback", spec.run_id, exc_info=True)
            row.update(status="failed", error=one_line(exc))
        row["finished_at"] = _now()
        if row.get("seconds") is None:
            row["seconds"] = time.perf_counter() - t0
        return row

    def _base_row(self, spec: TrialSpec) -> dict[str, Any]:
        p = self.protocol
        return {
            "run_id": spec.run_id,
            "method": spec.method,
            "fraction": spec.fraction,
            "seed": spec.seed,
            "status": "running",
            "model": p.model,
            "imgsz": p.imgsz,
            "batch": p.batch,
            "device": p.device,
            "budget": p.budget,
            "backbone": p.backbone if spec.method in self.feature_methods else "",
            "balance": "",
            "protocol": spec.protocol_key,
            "started_at": _now(),
        }

    def _run(self, spec: TrialSpec) -> dict[str, Any]:
        from detreduce.energy import EnergyMeter

        run_dir = Path(self.out) / TRIALS_DIR / spec.run_id
        if run_dir.exists():  # left over by a run killed in flight: start it afresh
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        ds = self.dataset()
        train_rows = ds.split_indices("train")
        if len(train_rows) == 0:
            raise ConfigError(f"{self.data}: no train split to reduce")

        with EnergyMeter(cpu_watts=self.cpu_watts).measure("selection") as sel_phase:
            exported = self._select(spec, ds, run_dir / "data")
        kept, data_yaml = exported.kept, exported.data_yaml
        figures = dict(exported.selection.figures or {})
        figures["balance"] = exported.selection.balance
        sel = sel_phase.record
        achieved = len(kept) / len(train_rows)
        train = _train_fields(self._train(spec, data_yaml, achieved, run_dir / "train"))
        emb = self._embedding_share(spec)
        eps = _epsilon(figures, self.protocol.level)
        return {
            **{k: train.get(k) for k in ("map50", "map50_95", "precision", "recall")},
            "balance": figures.get("balance", ""),
            "device": train.get("device") or self.protocol.device,
            "kwh_embedding": emb["kwh_embedding"],
            "kwh_embedding_whole": emb["kwh_embedding_whole"],
            "seconds_embedding": emb["seconds_embedding"],
            "kwh_selection": sel.kwh,
            "kwh_training": train.get("kwh_training"),
            "kwh_validation": train.get("kwh_validation"),
            "kwh_total": _sum(
                emb["kwh_embedding"],
                sel.kwh,
                train.get("kwh_training"),
                train.get("kwh_validation"),
            ),
            "kwh_cpu": _sum(emb["kwh_embedding_cpu"], sel.cpu_kwh, train.get("kwh_cpu")),
            "kwh_gpu": _sum(emb["kwh_embedding_gpu"], sel.gpu_kwh, train.get("kwh_gpu")),
            "kwh_ram": _sum(emb["kwh_embedding_ram"], sel.ram_kwh, train.get("kwh_ram")),
            "co2_kg": _sum(sel.kg_co2, train.get("co2_kg")),
            "energy_mode": train.get("energy_mode") or sel.cpu_mode,
            "seconds": _sum(
                emb["seconds_embedding"],
                sel.seconds,
                train.get("seconds_training"),
                train.get("seconds_validation"),
            ),
            "seconds_selection": sel.seconds,
            "seconds_training": train.get("seconds_training"),
            "seconds_validation": train.get("seconds_validation"),
            "budget": train.get("budget") or self.protocol.budget,
            "epochs": train.get("epochs"),
            "steps": train.get("steps"),
            "images_seen": train.get("images_seen"),
            "n_train": len(train_rows),
            "n_kept": len(kept),
            "eps": 0.0 if spec.method == FULL else eps,
            "class_share_tv": 0.0
            if spec.method == FULL
            else (figures.get("box_share") or {}).get("tv"),
            "per_class_ap": train.get("per_class_ap"),
            "figures": {
                **_compact(figures),
                "budget_capped": train.get("budget_capped"),
                "country": train.get("country"),
            },
            "run_dir": str(run_dir),
        }

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
        return select_and_export(
            ds,
            out_dir,
            method=spec.method,
            fraction=spec.fraction,
            seed=spec.seed,
            balance=self.protocol.balance,
            level=self.protocol.level,
            params=dict(self.protocol.params.get(spec.method, {})) or None,
            features=image,
            box_features=box,
            backbone=self.protocol.backbone,
            overwrite=True,
        )

    def _train(self, spec: TrialSpec, data_yaml: Path, fraction: float, out_dir: Path):
        from detreduce.energy import EnergyMeter
        from detreduce.train import train_yolo

        p = self.protocol
        result = train_yolo(
            data_yaml,
            model=p.model,
            epochs=p.epochs,
            imgsz=p.imgsz,
            batch=p.batch,
            device=p.device,
            seed=spec.seed,
            workers=p.workers,
            budget=p.budget,
            fraction=fraction,
            out_dir=out_dir,
            train_args=p.train_args or None,
            energy=EnergyMeter(cpu_watts=self.cpu_watts),
            on_epoch_end=None if self.on_epoch is None else partial(self.on_epoch, spec),
        )
        return result.to_dict()


# ---------------------------------------------------------------------- backends
class Backend(Protocol):
    """Runs trials and yields their rows as they finish (in any order)."""

    name: str

    def run(
        self,
        trials: Sequence[TrialSpec],
        runner: Callable[[TrialSpec], dict[str, Any]],
        on_start: Callable[[TrialSpec], None] | None = None,
    ) -> Iterator[dict[str, Any]]: ...


class LocalBackend:
    """One trial after another in this process (the right choice for one machine/GPU)."""

    name = "local"

    def run(
        self,
        trials: Sequence[TrialSpec],
        runner: Callable[[TrialSpec], dict[str, Any]],
        on_start: Callable[[TrialSpec], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for spec in trials:
            if on_start is not None:
                on_start(spec)
            yield runner(spec)


BACKENDS: dict[str, type] = {"local": LocalBackend}


def get_backend(name: str) -> Backend:
    """A backend by name; an unknown name fails with the list of known ones."""
    key = name.strip().lower()
    if key not in BACKENDS:
        raise ConfigError(
            f"backend must be one of {', '.join(sorted(BACKENDS))}, got {name!r} "
            "(a Ray backend is planned: it will yield rows from ray.wait the same way)"
        )
    return BACKENDS[key]()
