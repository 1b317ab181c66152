"""The record of one training + validation run, one row of a sweep's results store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from detreduce.data.atomic import write_json
from detreduce.energy import EnergyRecord, combine


@dataclass
class TrainResult:
    """What one ``train_yolo`` run cost and achieved.

    Metrics are those of the final-epoch weights on the full val split of the data
    YAML (not ``best.pt``: picking the checkpoint on val and reporting val is biased).
    ``ap50_95_per_class`` / ``ap50_per_class`` have one entry per class name, None for a
    class without boxes in val. Energies are kWh from codecarbon (see
    :mod:`detreduce.energy` for what ``cpu_mode`` means).
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
    epochs: int
    budget_capped: bool
    # data
    class_names: list[str]
    n_train_images: int
    n_val_images: int
    # what training did (counted by callbacks, not derived)
    epochs_run: int
    iterations: int
    optimizer_steps: int
    images_seen: int
    # metrics on val
    map50: float
    map50_95: float
    precision: float
    recall: float
    ap50_per_class: dict[str, float | None]
    ap50_95_per_class: dict[str, float | None]
    # cost
    train_energy: EnergyRecord
    val_energy: EnergyRecord
    # where and with what
    out_dir: str
    weights: str
    versions: dict[str, str] = field(default_factory=dict)
    # the training policy (detreduce.train.policy): name, params, images scheduled/forwarded
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def train_seconds(self) -> float:
        return self.train_energy.seconds

    @property
    def val_seconds(self) -> float:
        return self.val_energy.seconds

    @property
    def energy(self) -> EnergyRecord:
        """Training + validation energy."""
        return combine([self.train_energy, self.val_energy], phase="train+val")

    def to_dict(self) -> dict[str, Any]:
        """One flat-ish JSON-able row: scalars, plus per-class dicts and ``versions``.

        Headline columns (``seconds``, ``kwh_total``, ``kwh_cpu`` ...) sum training and
        validation; ``train_*`` / ``val_*`` keep each phase.
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
            train_seconds=self.train_seconds,
            val_seconds=self.val_seconds,
            kwh_total=total.kwh,
            kwh_cpu=total.cpu_kwh,
            kwh_gpu=total.gpu_kwh,
            kwh_ram=total.ram_kwh,
            kg_co2=total.kg_co2,
            country_iso_code=total.country_iso_code,
            cpu_power_mode=total.cpu_mode,
            gpu_power_mode=total.gpu_mode,
            energy_tracking_mode=total.tracking_mode,
            cpu_model=total.cpu_model,
        )
        for prefix, record in (("train_", self.train_energy), ("val_", self.val_energy)):
            row.update({f"{prefix}{k}": v for k, v in asdict(record).items() if k.endswith("kwh")})
            row[f"{prefix}kg_co2"] = record.kg_co2
            row[f"{prefix}energy_error"] = record.error
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> TrainResult:
        """Rebuild from :meth:`to_dict` output (e.g. a ``result.json``)."""
        kwargs = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        for prefix, name in (("train_", "train_energy"), ("val_", "val_energy")):
            kwargs[name] = EnergyRecord(
                phase="training" if prefix == "train_" else "validation",
                seconds=float(row[f"{prefix}seconds"]),
                kwh=row.get(f"{prefix}kwh"),
                cpu_kwh=row.get(f"{prefix}cpu_kwh"),
                gpu_kwh=row.get(f"{prefix}gpu_kwh"),
                ram_kwh=row.get(f"{prefix}ram_kwh"),
                kg_co2=row.get(f"{prefix}kg_co2"),
                cpu_mode=row.get("cpu_power_mode", ""),
                gpu_mode=row.get("gpu_power_mode", ""),
                tracking_mode=row.get("energy_tracking_mode", ""),
                country_iso_code=row.get("country_iso_code", ""),
                cpu_model=row.get("cpu_model", ""),
                error=row.get(f"{prefix}energy_error", ""),
            )
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temp file + rename): never half a file."""
        write_json(path, self.to_dict())
        return Path(path)
