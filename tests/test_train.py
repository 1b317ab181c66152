"""detreduce.train: real (tiny) YOLO trainings, offline, deterministic, budget policy, CLI.

Three short trainings on a 24-image synthetic set at imgsz 64 share the module: the
main run (network blocked, budget=steps), the same run through the CLI (determinism),
and a run with another seed (the determinism check can tell runs apart).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest
import yaml

from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError, DatasetError, OutputExistsError, WeightsNotFoundError
from detreduce.train import RESULT_FILE, TrainResult, plan_epochs, train_yolo
from detreduce.train.datayaml import resolve_data_yaml

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "seed": 0}


# ------------------------------------------------------------------ budget policy
def test_converge_trains_at_most_max_epochs_whatever_the_fraction():
    for fraction in (0.1, 0.5, 1.0):
        plan = plan_epochs(10, budget="converge", fraction=fraction, max_epochs=60)
        assert (plan.epochs, plan.budget, plan.capped) == (60, "converge", False)


@pytest.mark.parametrize(
    ("epochs", "budget", "fraction", "cap", "expected", "capped"),
    [
        (10, "epochs", 0.25, 4.0, 10, False),  # same epochs whatever the fraction
        (10, "steps", 1.0, 4.0, 10, False),
        (10, "steps", 0.5, 4.0, 20, False),  # fraction 0.5 -> epochs double
        (10, "steps", 0.3, 4.0, 33, False),
        (10, "steps", 0.1, 4.0, 40, True),  # 100 wanted, capped at 4x
        (3, "steps", 0.5, 1.5, 4, True),  # round(4.5) under the cap
        (10, "converge", 0.25, 4.0, 10, False),  # without max_epochs: epochs is the cap
    ],
)
def test_plan_epochs(epochs, budget, fraction, cap, expected, capped):
    plan = plan_epochs(epochs, budget=budget, fraction=fraction, max_epoch_scale=cap)
    assert (plan.epochs, plan.capped, plan.base_epochs, plan.budget) == (
        expected,
        capped,
        epochs,
        budget,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": "time"}, "budget"),
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"max_epoch_scale": 0.5}, "max_epoch_scale"),
    ],
)
def test_plan_epochs_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        plan_epochs(10, **kwargs)


# ------------------------------------------------------------------ data YAML
def test_resolve_data_yaml_roboflow_paths_and_name_maps(tmp_path):
    for split in ("train", "valid"):
        (tmp_path / split / "images").mkdir(parents=True)
    cfg = {"train": "../train/images", "val": "../valid/images", "nc": 2, "names": {0: "a", 1: "b"}}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(cfg))
    data = resolve_data_yaml(tmp_path)  # a folder means its data.yaml
    assert data.names == ["a", "b"]
    assert data.train == [str((tmp_path / "train" / "images").resolve())]
    written = yaml.safe_load(data.write(tmp_path / "out" / "data.yaml").read_text())
    assert written["val"] == str((tmp_path / "valid" / "images").resolve())
    assert written["names"] == {0: "a", 1: "b"} and "download" not in written


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"train": "images", "val": "missing", "names": ["a"]}, "val path not found"),
        ({"train": "images", "names": ["a"]}, "no 'val:'"),
        ({"train": "images", "val": "images"}, "names"),
        ({"train": "images", "val": "images", "nc": 2, "names": ["a"]}, "nc: 2"),
    ],
)
def test_resolve_data_yaml_errors(tmp_path, cfg, match):
    (tmp_path / "images").mkdir()
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DatasetError, match=match):
        resolve_data_yaml(tmp_path / "data.yaml")


# ------------------------------------------------------------------ real trainings
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("tiny"), n_images=24, imgsz=64, seed=0)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def offline_run(tiny_data, tmp_path_factory):
    """budget=steps at fraction 0.5 with every network door shut; cwd is an empty folder."""
    import ultralytics.utils.downloads as downloads

    attempts: list[str] = []

    def refuse(name):
        def _refuse(*args, **kwargs):
            attempts.append(f"{name}{args[:2]}")
            raise OSError(f"network disabled in test: {name}")

        return _refuse

    cwd = tmp_path_factory.mktemp("cwd")
    before = _snapshot(tiny_data.parent)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DETREDUCE_RUNS", str(tmp_path_factory.mktemp("runs")))
        mp.chdir(cwd)
        mp.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
        mp.setattr(socket, "create_connection", refuse("create_connection"))
        mp.setattr(socket.socket, "connect", refuse("socket.connect"))
        mp.setattr(urllib.request, "urlopen", refuse("urlopen"))
        mp.setattr(downloads, "safe_download", refuse("safe_download"))  # fonts, weights, data
        result = train_yolo(
            tiny_data,
            out_dir=tmp_path_factory.mktemp("run") / "main",
            budget="steps",
            fraction=0.5,
            **TINY,
        )
    return {
        "result": result,
        "attempts": attempts,
        "cwd_after": sorted(os.listdir(cwd)),
        "data_changed": _snapshot(tiny_data.parent) != before,
    }


@pytest.mark.slow
def test_training_offline_records_metrics_energy_and_counts(offline_run, tiny_data):
    r: TrainResult = offline_run["result"]
    assert offline_run["attempts"] == []  # no DNS, socket, urllib or Ultralytics download call
    assert offline_run["cwd_after"] == []  # no emissions.csv, runs/ or font in the cwd
    assert not offline_run["data_changed"]  # no labels.cache written into the dataset
    assert all(0.0 <= v <= 1.0 for v in (r.map50, r.map50_95, r.precision, r.recall))
    assert r.map50_95 <= r.map50
    assert set(r.per_class_ap) == set(r.class_names) == {"circle", "square", "triangle"}
    assert all(v is None or 0.0 <= v <= 1.0 for v in r.per_class_ap.values())
    # budget=steps with fraction 0.5 doubles the epochs, and training really ran them
    assert (r.budget, r.base_epochs, r.epochs_planned, r.epochs) == ("steps", 1, 2, 2)
    assert (r.n_train_images, r.n_val_images) == (18, 6)
    assert r.images_seen == r.epochs * r.n_train_images == 36
    assert r.iterations == r.epochs * 3  # ceil(18 / 8) batches per epoch
    assert 1 <= r.steps <= r.iterations
    # energy and time, per phase
    row = r.to_dict()
    assert row["kwh_total"] > 0 and row["kwh_training"] > 0 and row["kwh_validation"] > 0
    assert row["kwh_total"] == pytest.approx(row["kwh_training"] + row["kwh_validation"])
    assert row["kwh_cpu"] > 0 and row["kwh_ram"] > 0 and row["kwh_gpu"] == 0
    assert row["cpu_power_mode"] in {"rapl", "cpu_load", "constant"}
    assert row["country"] == "USA" and row["co2_kg"] > 0
    assert r.seconds_training > r.seconds_validation > 0
    # outputs: Ultralytics' run under out_dir, final weights only, result.json round trip
    out = Path(r.out_dir)
    assert Path(r.weights) == out / "train" / "weights" / "last.pt" and Path(r.weights).is_file()
    assert not (out / "train" / "weights" / "best.pt").exists()
    saved = json.loads((out / RESULT_FILE).read_text())
    assert saved == json.loads(json.dumps(row))
    assert TrainResult.from_dict(saved).to_dict() == saved


def _losses(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "train" / "results.csv") as fh:
        return [
            (row["train/box_loss"], row["train/cls_loss"], row["train/dfl_loss"])
            for row in csv.DictReader(fh)
        ]


def _weights(path: Path) -> dict:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return {k: v.float() for k, v in (ckpt.get("ema") or ckpt["model"]).state_dict().items()}


@pytest.mark.slow
def test_same_seed_same_run_through_the_cli(offline_run, tiny_data, tmp_path, capsys):
    import torch

    from detreduce.cli import main

    first: TrainResult = offline_run["result"]
    out = tmp_path / "cli"
    argv = ["train", tiny_data, "--epochs", 1, "--imgsz", 64, "--batch", 8, "--device", "cpu"]
    argv += ["--seed", 0, "--budget", "steps", "--fraction", 0.5, "--out", out]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert "mAP50-95" in printed and "kWh" in printed and str(out / RESULT_FILE) in printed
    second = json.loads((out / RESULT_FILE).read_text())
    assert _losses(out) == _losses(Path(first.out_dir))
    for key in ("map50", "map50_95", "precision", "recall", "steps", "images_seen"):
        assert second[key] == getattr(first, key), key
    a, b = _weights(Path(first.weights)), _weights(out / "train" / "weights" / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is not overwritten by accident
    assert main([str(a) for a in argv]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_another_seed_trains_differently(offline_run, tiny_data, tmp_path):
    other = train_yolo(tiny_data, out_dir=tmp_path / "seed1", **{**TINY, "seed": 1})
    assert other.epochs == 1 and other.budget == "epochs"
    assert _losses(tmp_path / "seed1")[0] != _losses(Path(offline_run["result"].out_dir))[0]


def test_bad_arguments_fail_before_training(tiny_data, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="yolov8n.pt"):
        train_yolo(tiny_data, out_dir=tmp_path / "a", model="yolov8n.pt", **TINY)
    with pytest.raises(ConfigError, match="train_args may not set"):
        train_yolo(tiny_data, out_dir=tmp_path / "b", train_args={"epochs": 3}, **TINY)
    with pytest.raises(ConfigError, match="fraction"):
        train_yolo(tiny_data, out_dir=tmp_path / "c", budget="steps", fraction=2.0, **TINY)
    done = tmp_path / "done"
    done.mkdir()
    (done / RESULT_FILE).write_text("{}")
    with pytest.raises(OutputExistsError, match="overwrite"):
        train_yolo(tiny_data, out_dir=done, **TINY)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("n", "epochs", "batch", "nbs", "steps"),
    [
        (205, 12, 8, 8, 312),  # = the steps MeteredTrainer counted in results/bccd
        (51, 12, 8, 8, 84),
        (102, 12, 8, 64, 19),  # 156 batches, 8 accumulated per step
        (0, 12, 8, 64, 0),
        (5, 1, 16, 64, 0),
    ],
)
def test_expected_optimizer_steps(n, epochs, batch, nbs, steps):
    from detreduce.train.budget import expected_optimizer_steps

    assert expected_optimizer_steps(n, epochs, batch, nbs) == steps


def test_few_steps_warning_names_the_fix():
    from detreduce.train.budget import few_steps_warning

    text = few_steps_warning(102, 12, 8, 64, 100, "the smallest run")
    assert text.startswith("the smallest run (102 images, 12 epochs, batch 8, nbs 64)")
    assert "about 19 optimizer steps, below 100" in text and "--train-arg nbs=8" in text
    assert few_steps_warning(205, 12, 8, 8, 100) is None
    assert "consider more --epochs or --budget steps" in few_steps_warning(51, 12, 8, 8, 100)


def test_sweep_warns_once_about_its_smallest_run(caplog):
    import logging

    from detreduce.settings import TrainSettings
    from detreduce.sweep.sweep import _warn_if_too_few_steps

    base = TrainSettings.build(epochs=12, imgsz=64, batch=8, device="cpu", workers=0)
    with caplog.at_level(logging.WARNING, logger="detreduce"):
        _warn_if_too_few_steps(base, {}, 205, 0.25)
        _warn_if_too_few_steps(base, {"nbs": 8}, 205, 0.5)
        _warn_if_too_few_steps(base.replace(budget="steps"), {"nbs": 8}, 205, 0.25)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1
    assert warned[0].startswith("the smallest run at fraction 0.25 (52 images, 12 epochs")


@pytest.mark.slow
def test_converge_validates_every_epoch_stops_on_a_plateau_and_keeps_the_curve(tiny_data, tmp_path):
    """1 epoch of patience on data too small to learn from: at most a few validated epochs,
    one curve point each, cumulative seconds and kWh, the last equal to the phase's."""
    r = train_yolo(
        tiny_data, out_dir=tmp_path / "c", budget="converge", max_epochs=6, patience=1,
        **{**TINY, "epochs": 2},
    )  # fmt: skip
    epochs = [p["epoch"] for p in r.curve]
    assert epochs == list(range(1, r.epochs + 1))  # val_every auto = 1 under converge
    assert r.epochs_planned == 6 and (r.epochs < 6) == r.stopped_early
    best = max(r.curve, key=lambda p: (p["map50_95"], -p["epoch"]))
    # stopped exactly when the best point became `patience` old, or ran to max_epochs
    assert r.epochs == 6 or r.epochs - best["epoch"] == 1
    kwh = [p["kwh"] for p in r.curve]
    seconds = [p["seconds_training"] for p in r.curve]
    assert kwh == sorted(kwh) and seconds == sorted(seconds) and seconds[0] > 0
    assert kwh[-1] == pytest.approx(r.train_energy.kwh)
    assert 0 < r.seconds_validation_in_training < r.seconds_training
    assert r.curve[-1]["seconds_validation"] == pytest.approx(r.seconds_validation_in_training)
    assert r.images_seen == r.epochs * r.n_train_images
    assert (
        TrainResult.from_dict(json.loads((tmp_path / "c" / RESULT_FILE).read_text())).curve
        == r.curve
    )


@pytest.mark.slow
def test_val_every_records_a_curve_under_the_epochs_budget_without_stopping(tiny_data, tmp_path):
    r = train_yolo(tiny_data, out_dir=tmp_path / "e", val_every=2, **{**TINY, "epochs": 3})
    assert [p["epoch"] for p in r.curve] == [2, 3] and r.epochs == 3 and not r.stopped_early
    plain = train_yolo(tiny_data, out_dir=tmp_path / "p", **TINY)  # no in-training validation
    assert [p["epoch"] for p in plain.curve] == [1] and plain.seconds_validation_in_training == 0
    assert plain.curve[0]["map50_95"] == plain.map50_95
    assert plain.curve[0]["kwh"] == pytest.approx(plain.energy.kwh)


def test_converge_settings_are_checked(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="val_every"):
        train_yolo(tiny_data, out_dir=tmp_path / "v", budget="converge", val_every=0, **TINY)
    with pytest.raises(ConfigError, match="patience"):
        train_yolo(tiny_data, out_dir=tmp_path / "p", budget="converge", patience=0, **TINY)
    with pytest.raises(ConfigError, match="train_args may not set"):
        train_yolo(tiny_data, out_dir=tmp_path / "a", train_args={"patience": 5}, **TINY)
    assert not any((tmp_path / d).exists() for d in "vpa")
