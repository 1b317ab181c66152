"""Energy per phase (embedding, selection, training, validation) with codecarbon.

A reduction only pays when the whole job costs less energy, so every phase is metered
the same way: codecarbon's :class:`OfflineEmissionsTracker` (no network: the carbon
intensity comes from the country code), started and stopped around the phase.

Where codecarbon cannot read a power counter it estimates, and the figure is only as
good as the mode behind it, so every record carries ``cpu_mode``:

- ``rapl``: measured by Intel/AMD RAPL counters (``/sys/class/powercap``);
- ``cpu_load``: estimated as TDP x CPU load (containers without RAPL; codecarbon
  assumes 4 W per thread when it does not know the CPU's TDP);
- ``constant``: estimated as half the TDP, whatever the load;
- ``unavailable``: codecarbon failed; only ``seconds`` is recorded, energies are None.

Where there is no power counter, ``cpu_watts`` (``train.energy_cpu_watts``,
``--cpu-watts``) gives codecarbon the CPU's real power instead of its TDP guess; the
mode then reads e.g. ``cpu_load@65W``. It is ignored where RAPL is readable, because
codecarbon would otherwise stop reading the counter.

Tracking never breaks a run: a codecarbon failure is logged as a warning and the
phase is recorded with its seconds and mode ``unavailable``. Nested meters are
allowed, but in ``process`` mode they each count the same process: do not add them.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from detreduce.settings import EnergySettings

log = logging.getLogger("detreduce")

UNAVAILABLE = "unavailable"
TRACKING_MODES = ("process", "machine")  # also EnergySettings' choices

# codecarbon's CPU hardware modes (``CPU._mode``) -> the names detreduce records.
_CPU_MODES = {
    "intel_rapl": "rapl",
    "cpu_load": "cpu_load",
    "constant": "constant",
    "intel_power_gadget": "power_gadget",
    "apple_powermetrics": "powermetrics",
    "windows_emi": "windows_emi",
}


@dataclass(frozen=True)
class EnergyRecord:
    """Energy of one phase. Energies are in kWh, None when tracking was unavailable."""

    phase: str
    seconds: float
    kwh: float | None = None
    cpu_kwh: float | None = None
    gpu_kwh: float | None = None
    ram_kwh: float | None = None
    kg_co2: float | None = None
    cpu_mode: str = UNAVAILABLE
    gpu_mode: str = "none"
    tracking_mode: str = ""
    country_iso_code: str = ""
    cpu_model: str = ""
    error: str = ""

    @property
    def available(self) -> bool:
        """True when codecarbon produced energies for this phase."""
        return self.kwh is not None

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """Flat JSON-able dict; ``prefix`` (e.g. ``"train_"``) is put before every key."""
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], prefix: str = "") -> EnergyRecord:
        """Inverse of :meth:`to_dict`."""
        names = [f.name for f in cls.__dataclass_fields__.values()]
        return cls(**{name: data[f"{prefix}{name}"] for name in names if f"{prefix}{name}" in data})


def combine(records: Iterable[EnergyRecord], phase: str = "total") -> EnergyRecord:
    """Sum of several phases; an energy is None as soon as one phase lacks it.

    Use it for phases that ran one after the other, never for nested ones.
    """
    records = list(records)

    def total(name: str) -> float | None:
        values = [getattr(r, name) for r in records]
        return None if not values or any(v is None for v in values) else float(sum(values))

    def joined(name: str) -> str:
        return ",".join(dict.fromkeys(getattr(r, name) for r in records if getattr(r, name)))

    return EnergyRecord(
        phase=phase,
        seconds=float(sum(r.seconds for r in records)),
        kwh=total("kwh"),
        cpu_kwh=total("cpu_kwh"),
        gpu_kwh=total("gpu_kwh"),
        ram_kwh=total("ram_kwh"),
        kg_co2=total("kg_co2"),
        cpu_mode=joined("cpu_mode") or UNAVAILABLE,
        gpu_mode=joined("gpu_mode") or "none",
        tracking_mode=joined("tracking_mode"),
        country_iso_code=joined("country_iso_code"),
        cpu_model=joined("cpu_model"),
        error="; ".join(r.error for r in records if r.error),
    )


@dataclass
class PhaseMeasurement:
    """What ``measure`` yields; ``record`` is set when the ``with`` block ends."""

    phase: str
    record: EnergyRecord | None = None


@dataclass
class EnergyMeter:
    """Meters phases one after the other and keeps their records.

    ``settings`` (:class:`~detreduce.settings.EnergySettings`, or a mapping of its keys:
    ``country``, ``tracking_mode``, ``cpu_watts``, ``measure_secs``) is built once
    through ``EnergySettings.build``: None is the ``train.energy_*`` defaults of
    ``cfg/train.yaml``. ``enabled=False`` records seconds only.
    """

    settings: EnergySettings | Mapping[str, Any] | None = None
    enabled: bool = True
    records: list[EnergyRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = EnergySettings.build(self.settings)

    @property
    def country_iso_code(self) -> str:
        return self.settings.country

    @property
    def tracking_mode(self) -> str:
        return self.settings.tracking_mode

    @property
    def measure_power_secs(self) -> float:
        return self.settings.measure_secs

    @property
    def cpu_watts(self) -> float | None:
        return self.settings.cpu_watts

    @contextmanager
    def measure(self, phase: str) -> Iterator[PhaseMeasurement]:
        """Meter the ``with`` block as ``phase``; the record is kept even if the block raises."""
        out = PhaseMeasurement(phase)
        tracker, error = None, ""
        if self.enabled:
            try:
                tracker = self._start_tracker(phase)
            except Exception as exc:  # noqa: BLE001 - energy must never break a run
                error = f"codecarbon could not start: {type(exc).__name__}: {exc}"
        else:
            error = "energy tracking disabled"
        start = time.perf_counter()
        try:
            yield out
        finally:
            seconds = time.perf_counter() - start
            if tracker is not None:
                out.record, error = self._stop_tracker(tracker, phase, seconds)
            if out.record is None:
                if self.enabled:
                    log.warning("energy of phase %r not measured (%s); seconds only", phase, error)
                out.record = EnergyRecord(phase=phase, seconds=seconds, error=error)
            self.records.append(out.record)

    def total(self, phase: str = "total", phases: Iterable[str] | None = None) -> EnergyRecord:
        """Sum of the kept records (all, or those whose phase is in ``phases``)."""
        wanted = None if phases is None else set(phases)
        return combine((r for r in self.records if wanted is None or r.phase in wanted), phase)

    def _start_tracker(self, phase: str) -> Any:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        wanted: dict[str, Any] = {
            "country_iso_code": self.country_iso_code,
            "project_name": f"detreduce-{phase}",
            "measure_power_secs": self.measure_power_secs,
            "tracking_mode": self.tracking_mode,
            "log_level": "error",
            "allow_multiple_runs": True,
            "output_methods": [],  # no emissions.csv in the working directory
        }
        if self._forced_cpu_watts() is not None:
            wanted["force_cpu_power"] = self.cpu_watts
        accepted = _init_parameters(OfflineEmissionsTracker)
        if "output_methods" not in accepted:  # codecarbon < 3
            wanted["save_to_file"] = False
        kwargs = {k: v for k, v in wanted.items() if k in accepted}
        tracker = OfflineEmissionsTracker(**kwargs)
        tracker.start()
        return tracker

    def _forced_cpu_watts(self) -> float | None:
        """``cpu_watts`` when it applies: set, and no RAPL counter to read instead."""
        if self.cpu_watts is None:
            return None
        try:
            from codecarbon.core.cpu import is_rapl_available

            if is_rapl_available():
                return None
        except Exception:  # noqa: BLE001 - cannot tell: trust the user's figure
            pass
        return self.cpu_watts

    def _stop_tracker(
        self, tracker: Any, phase: str, seconds: float
    ) -> tuple[EnergyRecord | None, str]:
        try:
            kg = tracker.stop()
            data = tracker.final_emissions_data
        except Exception as exc:  # noqa: BLE001 - energy must never break a run
            return None, f"codecarbon could not stop: {type(exc).__name__}: {exc}"
        if data is None:
            return None, "codecarbon returned no emissions data"
        cpu_mode, gpu_mode = hardware_modes(tracker)
        watts = self._forced_cpu_watts()
        if watts is not None and cpu_mode in ("cpu_load", "constant"):
            cpu_mode = f"{cpu_mode}@{watts:g}W"
        record = EnergyRecord(
            phase=phase,
            seconds=seconds,
            kwh=float(data.energy_consumed),
            cpu_kwh=float(data.cpu_energy),
            gpu_kwh=float(data.gpu_energy),
            ram_kwh=float(data.ram_energy),
            kg_co2=float(kg if kg is not None else data.emissions),
            cpu_mode=cpu_mode,
            gpu_mode=gpu_mode,
            tracking_mode=str(data.tracking_mode or self.tracking_mode),
            country_iso_code=str(data.country_iso_code or self.country_iso_code),
            cpu_model=str(data.cpu_model or ""),
        )
        return record, ""


def _init_parameters(cls: type) -> set[str]:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up the class hierarchy."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def hardware_modes(tracker: Any) -> tuple[str, str]:
    """(cpu_mode, gpu_mode) a started codecarbon tracker uses.

    codecarbon keeps its hardware in the private list ``tracker._hardware`` (``RAM``,
    ``CPU`` with ``_mode`` in intel_rapl / cpu_load / constant / ..., ``GPU`` when
    NVML (NVIDIA, measured) or AMD SMI is available); read defensively, as no public API exposes it.
    """
    cpu_mode, gpu_mode = "unknown", "none"
    for item in getattr(tracker, "_hardware", None) or []:
        kind = type(item).__name__
        if kind == "CPU":
            raw = str(getattr(item, "_mode", "unknown"))
            cpu_mode = _CPU_MODES.get(raw, raw)
        elif kind in {"AppleSiliconChip", "Raspberry"}:
            cpu_mode = kind.lower()
        elif kind == "GPU":
            devices = getattr(getattr(item, "devices", None), "devices", None) or []
            amd = any(type(d).__name__.startswith("AMD") for d in devices)
            gpu_mode = "amdsmi" if amd else "nvml"
    return cpu_mode, gpu_mode


@contextmanager
def measure(phase: str, *, meter: EnergyMeter | None = None) -> Iterator[PhaseMeasurement]:
    """Meter one phase: ``with measure("selection") as m: ...`` then ``m.record``.

    Pass ``meter`` to keep the record in a shared :class:`EnergyMeter` (e.g. a sweep's).
    """
    with (meter or EnergyMeter()).measure(phase) as out:
        yield out
