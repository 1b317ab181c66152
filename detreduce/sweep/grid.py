"""The experiment grid: which trials a sweep runs, each with a stable id.

A trial is one (method, fraction, seed) under one training protocol. Its id is built
from those values plus a short hash of the protocol, so a rerun of the same command
finds the trials it already finished, and a changed protocol can never be mistaken
for the old one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from detreduce.errors import ConfigError
from detreduce.methods import canonical_name, get_method
from detreduce.settings import BalanceSettings, FeatureSettings, SweepSettings, TrainSettings

#: The full-data baseline: the ``full`` training policy (every train image, every epoch).
FULL = "full"
#: The uniform random baseline, added to every sweep.
RANDOM = "random"


def normalize_method(name: str) -> str:
    """Canonical catalog name of a method (aliases, case, ``-``); unknown names raise."""
    return canonical_name(name)


@dataclass(frozen=True)
class Protocol:
    """Everything that decides what one trial measures, apart from method, fraction and seed.

    Two sweeps with equal protocols produce comparable numbers; the protocol hash is
    part of every run id and is checked when a sweep resumes into an existing folder.

    The named fields are the ones every sweep records (and hashes) since the first
    version. ``settings`` holds, per section (``train``, ``features``, ``balance``), the
    settings that also change what a trial measures *where they differ from the cfg
    defaults*; it is left out of :meth:`to_dict` (and so of the hash) when empty, so a
    sweep run with the defaults keeps the run ids and protocol key of stores written
    before it existed. Build one with :meth:`from_settings`.

    ``dataset`` and ``fingerprint`` say which data was measured. A sweep records the
    location-free :meth:`~detreduce.data.model.DetectionDataset.content_fingerprint` and
    no path (``dataset`` empty, left out of :meth:`to_dict`), so its store resumes from
    anywhere. Stores written before (*legacy*) recorded the absolute dataset path and the
    location-bound fingerprint; :mod:`detreduce.sweep.sweep` upgrades them on a resume
    from their old location and their run ids keep the key they were written with.
    """

    dataset: str
    fingerprint: str
    model: str
    epochs: int
    imgsz: int
    batch: int
    device: str
    budget: str
    backbone: str
    balance: str
    level: str
    workers: int | str
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_args: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    #: Settings beyond the named fields that change a trial's numbers (per section).
    MEASURED: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": ("max_epoch_scale", "amp", "threads", "max_epochs", "patience", "val_every"),
        "sweep": ("proxy_epochs",),
        "features": FeatureSettings.VALUE_FIELDS,
        "balance": (
            "classes_strata", "boxes_strata", "count_bins", "size_bins", "strategy",
            "keep_every_class", "metric", "count_edges", "size_edges",
        ),
    }  # fmt: skip

    @classmethod
    def from_settings(
        cls,
        *,
        dataset: str,
        fingerprint: str,
        sweep: SweepSettings,
        train: TrainSettings,
        features: FeatureSettings | None,
        balance: BalanceSettings,
        params: dict[str, dict[str, Any]] | None = None,
        train_args: dict[str, Any] | None = None,
    ) -> Protocol:
        """The protocol of a sweep; ``features`` is None when no method reads embeddings."""
        changed = {
            "train": train.changed(cls.MEASURED["train"]),
            "features": features.changed(cls.MEASURED["features"]) if features else {},
            "balance": balance.changed(cls.MEASURED["balance"]),
            "sweep": sweep.changed(cls.MEASURED["sweep"]),
        }
        return cls(
            dataset=dataset,
            fingerprint=fingerprint,
            model=train.model,
            epochs=train.epochs,
            imgsz=train.imgsz,
            batch=train.batch,
            device=train.device,
            budget=train.budget,
            backbone=features.backbone if features else "",
            balance=balance.mode,
            level=sweep.level,
            workers=train.workers,
            params={normalize_method(k): dict(v) for k, v in (params or {}).items()},
            train_args=dict(train_args or {}),
            settings={k: v for k, v in changed.items() if v},
        )

    def train_settings(self) -> TrainSettings:
        """The train settings the protocol records (the rest at their cfg defaults)."""
        return TrainSettings.build(
            self.settings.get("train", {}),
            model=self.model,
            epochs=self.epochs,
            imgsz=self.imgsz,
            batch=self.batch,
            device=self.device,
            budget=self.budget,
            workers=self.workers,
        )

    def balance_settings(self) -> BalanceSettings:
        """The balance every trial selects under (the mode plus any changed settings)."""
        return BalanceSettings.build(self.settings.get("balance", {}), mode=self.balance)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not out["settings"]:
            del out["settings"]  # as before the field existed: old protocol keys stay valid
        if not out["dataset"]:
            del out["dataset"]  # location-free: the content fingerprint says which data
        return out

    def key(self) -> str:
        """Short hash of the protocol (stable across Python versions and machines)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.blake2b(blob.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True)
class TrialSpec:
    """One trial: select ``fraction`` of the train split with ``method``, train, validate."""

    method: str
    fraction: float
    seed: int
    protocol_key: str

    @property
    def run_id(self) -> str:
        """Stable id, readable and unique per (method, fraction, seed, protocol)."""
        return f"{self.method}_f{self.fraction:g}_s{self.seed}_{self.protocol_key}"

    @property
    def is_full(self) -> bool:
        return self.method == FULL


def parse_fractions(values: Iterable[float | str]) -> list[float]:
    """Validate fractions: each in (0, 1); 1.0 is the full baseline and added anyway."""
    out: list[float] = []
    for value in values:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"fractions: {value!r} is not a number; expected e.g. 0.25") from None
        if not 0 < f <= 1:
            raise ConfigError(f"fractions: {f} is outside (0, 1]; expected e.g. 0.1,0.25,0.5")
        if f < 1 and f not in out:
            out.append(f)
    return sorted(out)


def build_grid(
    methods: Sequence[str],
    fractions: Sequence[float],
    seeds: Sequence[int],
    protocol_key: str,
) -> list[TrialSpec]:
    """All trials of a sweep: per seed the full baseline first, then every method × fraction.

    The uniform ``random`` baseline is always included (first). Training policies (catalog
    kind ``training``) act inside the trainer on the whole split, so they run once per
    seed at fraction 1.0; every other method runs at each fraction. Duplicates are
    dropped; order is seed-major so an interrupted sweep has complete seeds first.
    Unknown method names fail here, before any work, with suggestions.
    """
    names = [normalize_method(m) for m in methods if m.strip()]
    names = list(dict.fromkeys([RANDOM] + [m for m in names if m not in (FULL, RANDOM)]))
    fracs = parse_fractions(fractions)
    if not seeds:
        raise ConfigError("seeds: give at least one seed, e.g. --seeds 0")
    specs: list[TrialSpec] = []
    for seed in dict.fromkeys(int(s) for s in seeds):
        specs.append(TrialSpec(FULL, 1.0, seed, protocol_key))
        for method in names:
            if get_method(method).kind == "training":
                specs.append(TrialSpec(method, 1.0, seed, protocol_key))
                continue
            for frac in fracs:
                specs.append(TrialSpec(method, frac, seed, protocol_key))
    return specs
