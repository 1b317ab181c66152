"""The record of one training + validation run (``result.json``); a sweep's results row
(:class:`detreduce.sweep.record.RunRecord`) is built from it under the same names."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from detreduce.data.atomic import write_json
from detreduce.energy import EnergyRecord, combine


@dataclass
class TrainResult:
    """What one ``train_yolo`` run cost and achieved.

    Metrics are those of the final-epoch weights on the full val split of the data
    YAML (not ``best.pt``: picking the checkpoint on val and reporting val is biased).
    ``per_class_ap`` (AP50-95) / ``per_class_ap50`` have one entry per class name, None
    for a class without boxes in val. ``epochs_planned`` is what the budget asked for,
    ``epochs`` what training ran (counted by callbacks). Energies are kWh from codecarbon
    (see :mod:`detreduce.energy` for what ``cpu_mode`` means). Names shared with the
    results store (:class:`detreduce.sweep.record.RunRecord`) mean the same thing there.
    """

    # what ran
    data_yaml: str
    model: str
    imgsz: int
    batch: int
    device: str
    seed: int
    workers: int
    amp: bool
    budget: str
    fraction: float
    max_epoch_scale: float
    base_epochs: int
    epochs_planned: int
    budget_capped: bool
    # data
    class_names: list[str]
    n_train_images: int
    n_val_images: int
    # what training did (counted by callbacks, not derived)
    epochs: int
    iterations: int
    steps: int
    images_seen: int
    # metrics on val
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class_ap50: dict[str, float | None]
    per_class_ap: dict[str, float | None]
    # cost
    train_energy: EnergyRecord
    val_energy: EnergyRecord
    # where and with what
    out_dir: str
    weights: str
    versions: dict[str, str] = field(default_factory=dict)
    # the training policy (detreduce.train.policy): name, params, images scheduled/forwarded
    policy: dict[str, Any] = field(default_factory=dict)
    # torch CPU threads training ran on (``workers`` above: its loader processes); None in a
    # result.json written before it was recorded (Ultralytics' cores - 1 then, on CPU)
    threads: int | None = None
    # validation curve (detreduce.train.convergence): one dict per validation, cumulative
    # seconds and kWh; runs without in-training validation hold the final point only
    curve: list[dict[str, Any]] = field(default_factory=list)
    # seconds of in-training validation (inside seconds_training and its kWh)
    seconds_validation_in_training: float = 0.0
    # budget=converge stopped on a plateau before epochs_planned
    stopped_early: bool = False

    @property
    def seconds_training(self) -> float:
        return self.train_energy.seconds

    @property
    def seconds_validation(self) -> float:
        return self.val_energy.seconds

    @property
    def energy(self) -> EnergyRecord:
        """Training + validation energy."""
        return combine([self.train_energy, self.val_energy], phase="train+val")

    @property
    def energy_mode(self) -> str:
        """How the energy was measured, e.g. ``cpu_load`` or ``rapl+nvml`` (the store's column)."""
        total = self.energy
        cpu, gpu = total.cpu_mode or "", total.gpu_mode or ""
        return cpu if gpu in ("", "none") else f"{cpu}+{gpu}"

    def to_dict(self) -> dict[str, Any]:
        """One flat-ish JSON-able row: scalars, plus per-class dicts and ``versions``.

        Keys are the results store's names where they share a meaning: headline
        ``seconds``, ``kwh_total``, ``kwh_cpu``, ``co2_kg`` ... sum training and validation;
        ``seconds_training``, ``kwh_training``, ``kwh_training_cpu``, ``co2_kg_training``
        ... (and ``_validation``) keep each phase.
        """
        row: dict[str, Any] = {}
        for f in fields(self):
            if f.name in {"train_energy", "val_energy"}:
                continue
            value = getattr(self, f.name)
            row[f.name] = dict(value) if isinstance(value, dict) else value
        row["class_names"] = list(self.class_names)
        total = self.energy
        row.update(
            seconds=total.seconds,
            seconds_training=self.seconds_training,
            seconds_validation=self.seconds_validation,
            kwh_total=total.kwh,
            kwh_cpu=total.cpu_kwh,
            kwh_gpu=total.gpu_kwh,
            kwh_ram=total.ram_kwh,
            co2_kg=total.kg_co2,
            country=total.country_iso_code,
            energy_mode=self.energy_mode,
            cpu_power_mode=total.cpu_mode,
            gpu_power_mode=total.gpu_mode,
            energy_tracking_mode=total.tracking_mode,
            cpu_model=total.cpu_model,
        )
        for phase, record in (("training", self.train_energy), ("validation", self.val_energy)):
            row[f"kwh_{phase}"] = record.kwh
            row[f"kwh_{phase}_cpu"] = record.cpu_kwh
            row[f"kwh_{phase}_gpu"] = record.gpu_kwh
            row[f"kwh_{phase}_ram"] = record.ram_kwh
            row[f"co2_kg_{phase}"] = record.kg_co2
            row[f"energy_error_{phase}"] = record.error
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> TrainResult:
        """Rebuild from :meth:`to_dict` output (a ``result.json``), old key names included."""
        row = _upgrade(row)
        kwargs = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        for phase, name in (("training", "train_energy"), ("validation", "val_energy")):
            kwargs[name] = EnergyRecord(
                phase=phase,
                seconds=float(row[f"seconds_{phase}"]),
                kwh=row.get(f"kwh_{phase}"),
                cpu_kwh=row.get(f"kwh_{phase}_cpu"),
                gpu_kwh=row.get(f"kwh_{phase}_gpu"),
                ram_kwh=row.get(f"kwh_{phase}_ram"),
                kg_co2=row.get(f"co2_kg_{phase}"),
                cpu_mode=row.get("cpu_power_mode", ""),
                gpu_mode=row.get("gpu_power_mode", ""),
                tracking_mode=row.get("energy_tracking_mode", ""),
                country_iso_code=row.get("country", ""),
                cpu_model=row.get("cpu_model", ""),
                error=row.get(f"energy_error_{phase}", ""),
            )
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temp file + rename): never half a file."""
        write_json(path, self.to_dict())
        return Path(path)


#: ``result.json`` keys written before TrainResult took the results store's names.
_OLD_KEYS = {
    "optimizer_steps": "steps",
    "ap50_per_class": "per_class_ap50",
    "ap50_95_per_class": "per_class_ap",
    "kg_co2": "co2_kg",
    "country_iso_code": "country",
    **{
        f"{old}_{key}": new
        for old, phase in (("train", "training"), ("val", "validation"))
        for key, new in (
            ("seconds", f"seconds_{phase}"),
            ("kwh", f"kwh_{phase}"),
            ("cpu_kwh", f"kwh_{phase}_cpu"),
            ("gpu_kwh", f"kwh_{phase}_gpu"),
            ("ram_kwh", f"kwh_{phase}_ram"),
            ("kg_co2", f"co2_kg_{phase}"),
            ("energy_error", f"energy_error_{phase}"),
        )
    },
}


def _upgrade(row: dict[str, Any]) -> dict[str, Any]:
    """An old-style ``result.json`` dict with today's keys (a new one is returned as is).

    Old files had ``epochs`` for the planned epochs and ``epochs_run`` for those run;
    today ``epochs_planned`` and ``epochs`` (the store's meaning).
    """
    row = dict(row)
    if "epochs_run" in row and "epochs_planned" not in row:
        row["epochs_planned"] = row.pop("epochs", None)
        row["epochs"] = row.pop("epochs_run")
    for old, new in _OLD_KEYS.items():
        if old in row:
            row.setdefault(new, row.pop(old))
    return row
