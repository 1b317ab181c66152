"""detreduce.settings: one settings object per cfg section, built from cfg + overrides.

Table-driven, as the module's contract: defaults equal the cfg files, unknown keys fail
with a suggestion naming the section, bad values fail with one line naming the setting,
what was expected and what arrived, and a sweep's protocol key is unchanged for stores
written before the settings objects existed.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import yaml
from conftest import REPO

from detreduce.energy import EnergyMeter
from detreduce.errors import ConfigError, WeightsNotFoundError
from detreduce.settings import (
    SECTIONS,
    BalanceSettings,
    DataSettings,
    EnergySettings,
    FeatureSettings,
    ReduceSettings,
    SweepSettings,
    TrainSettings,
)
from detreduce.sweep.grid import Protocol

CFG = REPO / "detreduce" / "cfg"


def _cfg(section: str) -> dict:
    return yaml.safe_load((CFG / f"{section}.yaml").read_text())


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


# ---------------------------------------------------------------------------- defaults
@pytest.mark.parametrize(
    ("cls", "section", "keep"),
    [
        (DataSettings, "data", lambda k: True),
        (FeatureSettings, "features", lambda k: True),
        (BalanceSettings, "balance", lambda k: True),
        (ReduceSettings, "reduce", lambda k: True),
        (TrainSettings, "train", lambda k: not k.startswith("energy_")),
        (SweepSettings, "sweep", lambda k: not k.startswith("demo_")),
    ],
)
def test_defaults_equal_the_cfg_file(cls, section, keep):
    expected = {k: _plain(v) for k, v in _cfg(section).items() if keep(k)}
    assert cls.build().to_dict() == expected


def test_energy_defaults_are_the_energy_keys_of_train_yaml():
    expected = {k.removeprefix("energy_"): v for k, v in _cfg("train").items() if "energy_" in k}
    assert EnergySettings.build().to_dict() == expected


def test_every_cfg_key_belongs_to_a_settings_class():
    """A key added to a cfg file without a field (or a field without a key) is caught."""
    covered = {(c.SECTION, c.PREFIX + name) for c in SECTIONS.values() for name in c.field_names()}
    for section in ("data", "features", "balance", "reduce", "train", "sweep"):
        keys = {k for k in _cfg(section) if not k.startswith("demo_")}
        assert {(section, k) for k in keys} <= covered, section
    assert {s for s, _ in covered} <= {p.stem for p in CFG.glob("*.yaml")}


def test_sweep_cfg_has_no_dead_keys():
    """embed_charge (one value, read by nothing) is gone; backend is a registry choice."""
    from detreduce.sweep.runner import BACKENDS

    assert "embed_charge" not in _cfg("sweep")
    with pytest.raises(
        ConfigError, match=f"sweep.backend: expected one of {', '.join(sorted(BACKENDS))}"
    ):
        SweepSettings.build(backend="dask")
    assert SweepSettings.build(backend="ray").backend == "ray"


# -------------------------------------------------------------------------- unknown keys
@pytest.mark.parametrize(
    ("cls", "key", "suggestion", "where"),
    [
        (TrainSettings, "epoch", "epochs", "cfg/train.yaml"),
        (TrainSettings, "img_size", "imgsz", "cfg/train.yaml"),
        (EnergySettings, "contry", "country", "energy_* keys of cfg/train.yaml"),
        (SweepSettings, "fraction", "fractions", "cfg/sweep.yaml"),
        (FeatureSettings, "batchsize", "batch_size", "cfg/features.yaml"),
        (BalanceSettings, "strategey", "strategy", "cfg/balance.yaml"),
        (DataSettings, "on_eror", "on_error", "cfg/data.yaml"),
        (ReduceSettings, "methd", "method", "cfg/reduce.yaml"),
    ],
)
def test_unknown_key_names_the_section_and_suggests(cls, key, suggestion, where):
    with pytest.raises(ConfigError) as info:
        cls.build(**{key: 1})
    msg = str(info.value)
    assert msg.startswith(f"unknown {cls.__name__} setting {key!r}")
    assert where in msg and f"Did you mean: {suggestion}" in msg
    with pytest.raises(ConfigError, match="Did you mean"):
        cls.build({key: 1})  # a mapping goes through the same check


# ---------------------------------------------------------------------------- bad values
BAD = [
    (TrainSettings, {"imgsz": 100}, r"train\.imgsz: expected an integer >= 32 and a multiple of 32 \(e\.g\. 96 or 128\), got 100"),
    (TrainSettings, {"imgsz": 16}, r"train\.imgsz: expected an integer >= 32"),
    (TrainSettings, {"batch": 0}, r"train\.batch: expected an integer >= 1, got 0"),
    (TrainSettings, {"batch": -1}, r"train\.batch: expected an integer >= 1, got -1"),
    (TrainSettings, {"workers": -1}, r"train\.workers: expected auto or an integer >= 0, got -1"),
    (TrainSettings, {"epochs": 2.5}, r"train\.epochs: expected an integer >= 1, got 2\.5"),
    (TrainSettings, {"budget": "time"}, r"train\.budget: expected one of epochs, steps, converge, got 'time'"),
    (TrainSettings, {"fraction": 0}, r"train\.fraction: expected a number in \(0, 1\], got 0"),
    (TrainSettings, {"fraction": 1.5}, r"train\.fraction: expected a number in \(0, 1\]"),
    (TrainSettings, {"max_epoch_scale": 0.5}, r"train\.max_epoch_scale: expected a number >= 1"),
    (TrainSettings, {"amp": "yes"}, r"train\.amp: expected true or false, got 'yes'"),
    (TrainSettings, {"device": "gpu"}, r"train\.device: device must be one of auto, cpu"),
    (TrainSettings, {"model": "yolov8n.onnx"}, r"train\.model: expected a model YAML"),
    (EnergySettings, {"cpu_watts": 0}, r"train\.energy_cpu_watts: expected a power in watts > 0 or null, got 0"),
    (EnergySettings, {"country": "US"}, r"train\.energy_country: expected an ISO 3166-1 alpha-3"),
    (EnergySettings, {"tracking_mode": "host"}, r"train\.energy_tracking_mode: expected one of process, machine"),
    (EnergySettings, {"measure_secs": 0}, r"train\.energy_measure_secs: expected a number > 0"),
    (SweepSettings, {"methods": ["kcentre"]}, r"sweep\.methods: unknown method 'kcentre'\. Did you mean: kcenter"),
    (SweepSettings, {"fractions": [1.0]}, r"sweep\.fractions: expected a list of shares in \(0, 1\] with at least one below 1"),
    (SweepSettings, {"fractions": [0.5, 1.5]}, r"sweep\.fractions: expected"),
    (SweepSettings, {"seeds": []}, r"sweep\.seeds: expected a non-empty list each an integer >= 0, got \[\]"),
    (SweepSettings, {"seeds": [-1]}, r"sweep\.seeds: expected"),
    (SweepSettings, {"level": "pixel"}, r"sweep\.level: expected one of image, box, got 'pixel'"),
    (SweepSettings, {"retry_failed": "yes"}, r"sweep\.retry_failed: expected true or false"),
    (FeatureSettings, {"level": "boxes"}, r"features\.level: expected one of image, box, both"),
    (FeatureSettings, {"dtype": "int8"}, r"features\.dtype: expected one of float32, float16"),
    (FeatureSettings, {"crop_padding": 3}, r"features\.crop_padding: expected a number in \[0, 2\], got 3"),
    (FeatureSettings, {"batch_size": 0}, r"features\.batch_size: expected an integer >= 1 or null, got 0"),
    (FeatureSettings, {"cache_key": "mtime"}, r"features\.cache_key: expected one of stat, content"),
    (FeatureSettings, {"device": "cuda:x"}, r"features\.device: device must be one of"),
    (BalanceSettings, {"mode": "class"}, r"balance\.mode: expected one of none, classes, classes\+boxes, got 'class'"),
    (BalanceSettings, {"strategy": "both"}, r"balance\.strategy: expected one of auto, per_stratum, joint"),
    (BalanceSettings, {"classes_strata": ["rarest"]}, r"balance\.classes_strata: expected a non-empty list each one of rarest_class"),
    (BalanceSettings, {"count_edges": [0, 2, 1]}, r"balance\.count_edges: expected a non-empty list, increasing,"),
    (BalanceSettings, {"metric": "manhattan"}, r"balance\.metric: expected one of chebyshev, euclidean"),
    (DataSettings, {"on_error": "ignore"}, r"data\.on_error: expected one of warn, raise, got 'ignore'"),
    (DataSettings, {"iscrowd": "drop"}, r"data\.iscrowd: expected one of skip, keep"),
    (DataSettings, {"coord_tolerance": -0.1}, r"data\.coord_tolerance: expected a number in \[0, 0\.5\]"),
    (ReduceSettings, {"fraction": 1.5}, r"reduce\.fraction: expected a share in \(0, 1\] \(e\.g\. 0\.25\) or a whole image count >= 1 \(e\.g\. 100\), got 1\.5"),
    (ReduceSettings, {"fraction": 0}, r"reduce\.fraction: expected .*, got 0$"),
    (ReduceSettings, {"fraction": 2.0}, r"reduce\.fraction: expected .*, got 2\.0$"),
    (ReduceSettings, {"fraction": True}, r"reduce\.fraction: expected .*, got True$"),
    (ReduceSettings, {"fraction": "half"}, r"reduce\.fraction: expected .*, got 'half'$"),
    (ReduceSettings, {"method": "randomm"}, r"reduce\.method: unknown method 'randomm'\. Did you mean: random"),
    (ReduceSettings, {"seed": -1}, r"reduce\.seed: expected an integer >= 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "overrides", "match"), BAD)
def test_bad_value_is_one_line_naming_setting_expected_and_given(cls, overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        cls.build(**overrides)
    assert "\n" not in str(info.value)


def test_missing_weights_file_is_its_own_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="weights file not found.*nothing can download"):
        TrainSettings.build(model=str(tmp_path / "best.pt"))
    (tmp_path / "best.pt").write_bytes(b"x")
    assert TrainSettings.build(model=str(tmp_path / "best.pt")).model == str(tmp_path / "best.pt")


def test_cheap_rules_run_before_the_method_catalog():
    """--fraction 1.5 fails on the fraction even with a bad method (no catalog import needed)."""
    with pytest.raises(ConfigError, match=r"^reduce\.fraction"):
        ReduceSettings.build(method="no-such-method", fraction=1.5)


# --------------------------------------------------------------------------- build rule
def test_build_rule_defaults_then_base_then_overrides_none_is_default():
    assert TrainSettings.build(epochs=None) == TrainSettings.build()
    base = TrainSettings.build(epochs=5, imgsz=64)
    assert TrainSettings.build(base).epochs == 5
    assert TrainSettings.build(base, epochs=None).epochs == 5  # None: keep, never reset
    assert TrainSettings.build(base, epochs=7).to_dict() == {**base.to_dict(), "epochs": 7}
    assert TrainSettings.build({"epochs": 5, "imgsz": 64}) == base
    assert base.replace(seed=3) == TrainSettings.build(epochs=5, imgsz=64, seed=3)
    assert base.changed() == {"epochs": 5, "imgsz": 64}
    assert BalanceSettings.build("classes") == BalanceSettings.build(mode="classes")


def test_build_rejects_another_section_object():
    with pytest.raises(ConfigError, match="expected a TrainSettings or a mapping"):
        TrainSettings.build(SweepSettings.build())


@pytest.mark.parametrize("cls", list(SECTIONS.values()))
def test_frozen_and_round_trips_through_to_dict(cls):
    s = cls.build()
    assert cls.build(s.to_dict()) == s
    json.dumps(s.to_dict())  # JSON-able, for manifests
    field = cls.field_names()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, field, None)


@pytest.mark.parametrize(
    ("given", "stored", "is_count"),
    [(0.25, 0.25, False), (1.0, 1.0, False), (1, 1, True), (2, 2, True), (100, 100, True)],
)
def test_reduce_fraction_float_is_a_share_int_is_a_count(given, stored, is_count):
    s = ReduceSettings.build(fraction=given)
    assert (s.fraction, type(s.fraction), s.is_count) == (stored, type(stored), is_count)


def test_sweep_settings_normalize_names_and_fractions():
    s = SweepSettings.build(methods=["K-Center", "clc"], fractions=[0.5, 1.0, 0.25, 0.5])
    assert s.methods == ("kcenter", "clc") and s.fractions == (0.25, 0.5)


def test_energy_meter_is_built_from_energy_settings():
    meter = EnergyMeter({"country": "FRA", "cpu_watts": 65})
    assert meter.settings == EnergySettings.build(country="FRA", cpu_watts=65)
    assert (meter.country_iso_code, meter.cpu_watts) == ("FRA", 65.0)
    assert EnergyMeter().settings == EnergySettings.build()


# ---------------------------------------------------------------- sweep protocol key
def test_protocol_key_of_the_committed_bccd_sweep_is_unchanged():
    """results/bccd was swept before settings objects existed: same settings, same key.

    Its sweep.json was published with a relative dataset path; the key was computed on
    the absolute path the sweep ran with (the run ids in results.csv carry it). It ran
    with the then default ``workers: 2``; the default is ``auto`` now, so resuming it
    needs ``--workers 2`` (a rerun without it is refused with the differing key).
    """
    folder = REPO / "results" / "bccd"
    config = json.loads((folder / "sweep.json").read_text())
    old = config["protocol"]
    protocol = Protocol.from_settings(
        dataset="/work/shared/datasets/bccd",  # the path the 2026 sweep ran on (in its key)
        fingerprint=old["fingerprint"],
        sweep=SweepSettings.build(methods=["random", "clc", "kcenter"], seeds=[0, 1]),
        train=TrainSettings.build(epochs=12, imgsz=224, batch=8, device="auto", workers=2),
        features=FeatureSettings.build(),
        balance=BalanceSettings.build(),
        train_args={"nbs": 8, "warmup_epochs": 1},
    )
    assert {**protocol.to_dict(), "dataset": old["dataset"]} == old
    assert protocol.key() == config["protocol_key"] == "5b8de9bf"
    with open(folder / "results.csv", newline="") as f:
        assert {row["protocol"] for row in csv.DictReader(f)} == {protocol.key()}
    # and trials rebuild the same settings from it
    assert protocol.train_settings() == TrainSettings.build(
        epochs=12, imgsz=224, batch=8, device="auto", workers=2
    )
    assert protocol.balance_settings() == BalanceSettings.build()


@pytest.mark.parametrize(
    ("section", "change", "recorded"),
    [
        ("train", {"amp": False}, {"train": {"amp": False}}),
        ("train", {"max_epoch_scale": 2.0}, {"train": {"max_epoch_scale": 2.0}}),
        ("features", {"image_size": 160}, {"features": {"image_size": 160}}),
        ("balance", {"strategy": "joint"}, {"balance": {"strategy": "joint"}}),
    ],
)
def test_changed_measured_settings_change_the_protocol_key(section, change, recorded):
    def protocol(**changes):
        given = {"train": {}, "features": {}, "balance": {}, **changes}
        return Protocol.from_settings(
            dataset="/d",
            fingerprint="f",
            sweep=SweepSettings.build(),
            train=TrainSettings.build(given["train"]),
            features=FeatureSettings.build(given["features"]),
            balance=BalanceSettings.build(given["balance"]),
        )

    plain, changed = protocol(), protocol(**{section: change})
    assert "settings" not in plain.to_dict()
    assert changed.settings == recorded and changed.key() != plain.key()
    if section == "balance":
        assert changed.balance_settings().strategy == "joint"
    if section == "train":
        assert changed.train_settings().to_dict().items() >= change.items()


def test_verbose_and_min_steps_do_not_change_the_protocol():
    def key(**train):
        return Protocol.from_settings(
            dataset="/d",
            fingerprint="f",
            sweep=SweepSettings.build(),
            train=TrainSettings.build(**train),
            features=None,
            balance=BalanceSettings.build(),
        ).key()

    assert key() == key(verbose=True, min_optimizer_steps=5)
