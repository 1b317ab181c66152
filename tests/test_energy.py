"""detreduce.energy: per-phase records, graceful failure, nothing written to the cwd."""

from __future__ import annotations

import logging
import time

import pytest

import detreduce.energy as energy
from detreduce.energy import UNAVAILABLE, EnergyMeter, EnergyRecord, combine, measure
from detreduce.errors import ConfigError

KNOWN_CPU_MODES = {"rapl", "cpu_load", "constant", "power_gadget", "powermetrics", "windows_emi"}


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_measure_records_energy_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with measure("selection") as m:
        _busy(0.3)
    rec = m.record
    assert rec.phase == "selection"
    assert rec.available and rec.kwh > 0
    assert rec.kwh == pytest.approx(rec.cpu_kwh + rec.gpu_kwh + rec.ram_kwh, rel=1e-6)
    assert rec.cpu_mode in KNOWN_CPU_MODES
    assert rec.country_iso_code == "USA"
    assert rec.tracking_mode == "process"
    assert 0.3 <= rec.seconds < 5
    assert rec.kg_co2 > 0
    assert list(tmp_path.iterdir()) == []  # no emissions.csv, no lock or config file


def test_meter_keeps_phases_in_order_and_totals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meter = EnergyMeter({"country": "FRA", "tracking_mode": "machine"})
    for phase in ("embedding", "selection"):
        with meter.measure(phase):
            _busy(0.05)
    assert [r.phase for r in meter.records] == ["embedding", "selection"]
    assert {r.country_iso_code for r in meter.records} == {"FRA"}
    total = meter.total()
    assert total.kwh == pytest.approx(sum(r.kwh for r in meter.records))
    assert total.seconds == pytest.approx(sum(r.seconds for r in meter.records))
    only = meter.total(phases=["selection"])
    assert only.kwh == pytest.approx(meter.records[1].kwh)


class _Broken:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("no power information on this machine")


@pytest.fixture
def detreduce_log(caplog, monkeypatch):
    """caplog for the detreduce logger, even after the CLI turned its propagation off."""
    monkeypatch.setattr(logging.getLogger("detreduce"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="detreduce"):
        yield caplog


def test_tracker_failure_degrades_to_seconds(monkeypatch, detreduce_log):
    import codecarbon

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _Broken)
    with measure("training") as m:
        _busy(0.05)
    rec = m.record
    assert rec.cpu_mode == UNAVAILABLE and not rec.available
    assert rec.kwh is None and rec.cpu_kwh is None and rec.kg_co2 is None
    assert rec.seconds >= 0.05
    assert "no power information" in rec.error
    assert any("not measured" in r.getMessage() for r in detreduce_log.records)


class _StopFails:
    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        raise OSError("RAPL file vanished")


def test_stop_failure_degrades_and_body_errors_propagate(monkeypatch):
    import codecarbon

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _StopFails)
    meter = EnergyMeter()
    with pytest.raises(ValueError, match="boom"), meter.measure("validation"):
        raise ValueError("boom")
    (rec,) = meter.records  # the phase is recorded even though its body failed
    assert rec.cpu_mode == UNAVAILABLE and "RAPL file vanished" in rec.error


def test_disabled_meter_records_seconds_without_warning(detreduce_log):
    with EnergyMeter(enabled=False).measure("x") as m:
        pass
    assert m.record.kwh is None and m.record.cpu_mode == UNAVAILABLE
    assert not detreduce_log.records


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tracking_mode": "host"}, "train.energy_tracking_mode: expected one of process"),
        ({"country": "US"}, "train.energy_country: expected an ISO 3166-1 alpha-3"),
        ({"measure_secs": 0}, "train.energy_measure_secs: expected a number > 0"),
        ({"cpu_watts": 0}, "train.energy_cpu_watts: expected a power in watts > 0"),
        ({"cpu_watts": -65}, "train.energy_cpu_watts"),
        ({"cpu_watts": "lots"}, "train.energy_cpu_watts"),
        ({"country_iso_code": "FRA"}, "unknown EnergySettings setting 'country_iso_code'"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EnergyMeter(kwargs)


def test_cpu_watts_scales_the_cpu_estimate_where_there_is_no_rapl():
    from codecarbon.core.cpu import is_rapl_available

    records = {}
    for watts in (10.0, 100.0):
        with EnergyMeter({"cpu_watts": watts, "measure_secs": 1}).measure("busy") as m:
            _busy(2.0)
        records[watts] = m.record
    if is_rapl_available():  # a measured counter wins over any given figure
        assert {r.cpu_mode for r in records.values()} == {"rapl"}
        return
    assert records[10.0].cpu_mode.endswith("@10W") and records[100.0].cpu_mode.endswith("@100W")
    ratio = records[100.0].cpu_kwh / records[10.0].cpu_kwh  # same work, 10x the power
    assert 5 < ratio < 20, ratio


def test_combine_propagates_missing_energy_and_joins_modes():
    a = EnergyRecord(
        "a", 1.0, kwh=1.0, cpu_kwh=0.5, gpu_kwh=0.0, ram_kwh=0.5, kg_co2=0.1, cpu_mode="rapl"
    )
    b = EnergyRecord(
        "b", 2.0, kwh=2.0, cpu_kwh=1.0, gpu_kwh=0.5, ram_kwh=0.5, kg_co2=0.2, cpu_mode="rapl"
    )
    c = EnergyRecord("c", 3.0, error="failed")
    ab = combine([a, b])
    assert (ab.seconds, ab.kwh, ab.gpu_kwh, ab.cpu_mode) == (3.0, 3.0, 0.5, "rapl")
    abc = combine([a, b, c], phase="run")
    assert abc.phase == "run" and abc.seconds == 6.0
    assert abc.kwh is None  # one unmeasured phase makes the total unknown, not smaller
    assert abc.cpu_mode == f"rapl,{UNAVAILABLE}" and abc.error == "failed"


def test_record_dict_round_trip():
    rec = EnergyRecord("training", 2.5, kwh=1e-4, cpu_kwh=6e-5, gpu_kwh=0.0, ram_kwh=4e-5)
    assert EnergyRecord.from_dict(rec.to_dict(prefix="t_"), prefix="t_") == rec


def test_hardware_modes_reads_codecarbon_hardware():
    class CPU:
        _mode = "intel_rapl"

    class GPU:
        devices = None

    class Tracker:
        _hardware = [CPU(), GPU()]

    assert energy.hardware_modes(Tracker()) == ("rapl", "nvml")
    assert energy.hardware_modes(object()) == ("unknown", "none")
