"""The CLI as a new user meets it: --version, arguments checked before any work,
the same settings objects as the Python API, and --train-arg reaching Ultralytics.

"Before any work" is proven with spies on the real functions that read data
(``load_dataset``, ``embed_dataset``, ``resolve_data_yaml``): they record calls and then
run the real thing, so a positive control shows each spy does see a call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from detreduce import __version__
from detreduce.cli import main
from detreduce.data.synthetic import make_synthetic
from detreduce.settings import (
    BalanceSettings,
    EnergySettings,
    FeatureSettings,
    ReduceSettings,
    SweepSettings,
    TrainSettings,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("tiny"), n_images=24, imgsz=64, seed=0)


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


class Spy:
    """Wraps a real function: records each call, then calls it."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.fn(*args, **kwargs)


@pytest.fixture
def spies(monkeypatch):
    """Spies on every door to the data: loading, embedding, reading a data YAML."""
    import detreduce.data.load as load_mod
    import detreduce.features as features
    import detreduce.reduce as reduce_mod
    import detreduce.train.yolo as yolo

    out = {
        "load": Spy(load_mod.load_dataset),
        "embed": Spy(features.embed_dataset),
        "data_yaml": Spy(yolo.resolve_data_yaml),
    }
    monkeypatch.setattr(load_mod, "load_dataset", out["load"])
    monkeypatch.setattr(reduce_mod, "load_dataset", out["load"])  # imported by name there
    monkeypatch.setattr(features, "embed_dataset", out["embed"])
    monkeypatch.setattr(yolo, "resolve_data_yaml", out["data_yaml"])
    return out


# ----------------------------------------------------------------------------- version
def test_version_prints_the_package_version(capsys):
    code, out, err = run(["--version"], capsys)
    assert (code, out, err) == (0, f"detreduce {__version__}\n", "")


# ------------------------------------------------------------------- reduce fails fast
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fraction", "1.5"], "reduce.fraction: expected a share in (0, 1]"),
        (["--fraction", "0"], "reduce.fraction: expected a share in (0, 1]"),
        (["--fraction", "half"], "--fraction: expected a share in (0, 1]"),
        (["--fraction", "-3"], "reduce.fraction: expected a share in (0, 1]"),
        (["--on-error", "ignore"], "data.on_error: expected one of warn, raise"),
        (["--out", "{existing}"], "exists; pass --overwrite"),
        (["--method", "kcentre"], "reduce.method: unknown method 'kcentre'. Did you mean"),
        (["--level", "pixel"], "reduce.level: expected one of image, box"),
        (["--balance", "class"], "balance.mode: expected one of none, classes"),
        (["--device", "gpu"], "features.device: device must be one of"),
    ],
)
def test_reduce_bad_arguments_fail_before_any_data_is_read(
    tiny, tmp_path, capsys, spies, extra, message
):
    existing = tmp_path / "already-there"
    existing.mkdir()
    extra = [str(existing) if a == "{existing}" else a for a in extra]
    args = ["reduce", tiny, "--method", "kcenter", "--backbone", "hist_hog"]
    if "--out" not in extra:
        args += ["--out", tmp_path / "new"]
    code, out, err = run([*args, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("detreduce: error: ")
    assert message in lines[0]
    assert spies["load"].calls == [] and spies["embed"].calls == []
    assert not (tmp_path / "new").exists()


def test_reduce_positive_control_reads_and_embeds_once(tiny, tmp_path, capsys, spies):
    """The same command with good arguments: the spies see the data being read."""
    args = ["reduce", tiny, "--method", "kcenter", "--backbone", "hist_hog", "--fraction", "0.5"]
    code, out, _ = run([*args, "--out", tmp_path / "ok"], capsys)
    assert code == 0
    assert len(spies["load"].calls) == 1 and len(spies["embed"].calls) == 1
    assert "is an image count" not in out


def test_reduce_existing_default_out_fails_before_embedding(tiny, tmp_path, capsys, spies):
    args = ["reduce", tiny, "--method", "kcenter", "--backbone", "hist_hog", "--fraction", "0.5"]
    assert run(args, capsys)[0] == 0  # writes the default folder
    embedded = len(spies["embed"].calls)
    code, _, err = run(args, capsys)
    assert code == 2 and "exists; pass --overwrite" in err
    assert len(spies["embed"].calls) == embedded  # the second run stopped before embedding


@pytest.mark.parametrize(
    ("fraction", "said"),
    [
        ("2", "keeping 2 images (--fraction 2 is an image count"),
        ("1", "keeping 1 image (--fraction 1 is an image count"),
        ("1.0", None),
        ("0.5", None),
    ],
)
def test_reduce_says_when_fraction_is_an_image_count(tiny, tmp_path, capsys, fraction, said):
    code, out, _ = run(
        ["reduce", tiny, "--method", "random", "--fraction", fraction, "--out", tmp_path / "o"],
        capsys,
    )
    assert code == 0
    text = " ".join(out.split())
    if said:
        assert said in text
        kept = json.loads((tmp_path / "o" / "selection.json").read_text())["images_after"]
        assert kept == int(fraction)
    else:
        assert "is an image count" not in text


# -------------------------------------------------------------- train / sweep fail fast
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--imgsz", "100"], "train.imgsz: expected an integer >= 32 and a multiple of 32"),
        (["--batch", "0"], "train.batch: expected an integer >= 1, got 0"),
        (["--budget", "time"], "train.budget: expected one of epochs, steps"),
        (["--train-arg", "epochs=3"], "train_args may not set ['epochs']"),
        (["--train-arg", "lr0"], "--train-arg expects KEY=VALUE, got 'lr0'"),
        (["--on-error", "ignore"], "data.on_error: expected one of warn, raise"),
        (["--cpu-watts", "0"], "train.energy_cpu_watts: expected a power in watts > 0"),
        (["--out", "{finished}"], "result.json exists (a finished run)"),
        (["--policy", "kcenter"], "method 'kcenter' is of kind 'embedding', not 'training'"),
        (["--policy", "infobatch@prune_ratio=1"], "prune_ratio must be in [0, 1)"),
    ],
)
def test_train_bad_arguments_fail_before_any_data_is_read(
    tiny, tmp_path, capsys, spies, extra, message
):
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "result.json").write_text("{}")
    extra = [str(finished) if a == "{finished}" else a for a in extra]
    args = ["train", tiny, "--epochs", "1", "--imgsz", "64", "--device", "cpu"]
    if "--out" not in extra:
        args += ["--out", tmp_path / "run"]
    code, _, err = run([*args, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert spies["data_yaml"].calls == [] and spies["load"].calls == []
    assert not (tmp_path / "run").exists()


def test_train_on_error_raise_stops_at_a_bad_label_before_training(tmp_path, capsys, spies):
    data = make_synthetic(tmp_path / "bad", n_images=24, imgsz=64, seed=0)
    label = sorted((tmp_path / "bad" / "labels" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "0 0.5 0.5\n")  # 3 fields: a malformed line
    args = ["train", data, "--epochs", "1", "--imgsz", "64", "--device", "cpu"]
    code, _, err = run([*args, "--out", tmp_path / "run", "--on-error", "raise"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert label.name in err and "detreduce: error:" in err
    assert len(spies["load"].calls) == 1  # the label check ran (through the loader) ...
    assert not (tmp_path / "run" / "train").exists()  # ... and training never started


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fractions", "1.5"], "sweep.fractions: expected a list of shares in (0, 1]"),
        (["--methods", "kcentre"], "sweep.methods: unknown method 'kcentre'"),
        (["--backend", "dask"], "sweep.backend: expected one of local, ray, got 'dask'"),
        (["--seeds", ""], "sweep.seeds: expected a non-empty list"),
        (["--imgsz", "100"], "train.imgsz: expected an integer >= 32"),
        (["--balance", "class"], "balance.mode: expected one of none"),
        (["--out", "{results_only}"], "holds results.csv but no sweep.json"),
        (["--out", "{other_sweep}"], "holds a sweep with another protocol ("),
    ],
)
def test_sweep_bad_arguments_fail_before_any_data_is_read(
    tiny, tmp_path, capsys, spies, extra, message
):
    results_only = tmp_path / "results-only"
    results_only.mkdir()
    (results_only / "results.csv").write_text("run_id\n")
    other = tmp_path / "other-sweep"
    other.mkdir()
    (other / "sweep.json").write_text(json.dumps({"methods": ["random", "prd"], "protocol": {}}))
    names = {"{results_only}": str(results_only), "{other_sweep}": str(other)}
    extra = [names.get(a, a) for a in extra]
    args = ["sweep", tiny, "--epochs", "1", "--imgsz", "64", "--device", "cpu", "--no-report"]
    args += ["--methods", "random"] if "--methods" not in extra else []
    if "--out" not in extra:
        args += ["--out", tmp_path / "s"]
    code, _, err = run([*args, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert spies["load"].calls == [] and spies["embed"].calls == []
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("train_yolo", "unknown TrainSettings setting 'epoch' (cfg/train.yaml). Did you mean: epochs"),
        ("run_sweep_seed", "run_sweep sets train seed per run"),
        ("run_sweep_key", "unknown SweepSettings setting 'method' (cfg/sweep.yaml). Did you mean: methods?"),
        ("reduce_dataset", "unknown ReduceSettings setting 'backbone' (cfg/reduce.yaml)"),
    ],
)  # fmt: skip
def test_api_checks_settings_before_reading(tiny, tmp_path, spies, call, message):
    from detreduce.errors import ConfigError
    from detreduce.reduce import reduce_dataset
    from detreduce.sweep import run_sweep
    from detreduce.train import train_yolo

    calls = {
        "train_yolo": lambda: train_yolo(tiny, out_dir=tmp_path / "t", epoch=3),
        "run_sweep_seed": lambda: run_sweep(tiny, tmp_path / "s", train={"seed": 3}),
        "run_sweep_key": lambda: run_sweep(tiny, tmp_path / "s", sweep={"method": ["clc"]}),
        "reduce_dataset": lambda: reduce_dataset(tiny, out=tmp_path / "r", backbone="x"),
    }
    with pytest.raises(ConfigError) as info:
        calls[call]()
    assert message in str(info.value)
    assert spies["load"].calls == [] and spies["data_yaml"].calls == []


# -------------------------------------------------------- CLI and API: the same objects
class Stop(Exception):
    """Raised by a recorder once it has the arguments: the command goes no further."""


def _record(monkeypatch, module, name) -> dict:
    seen: dict = {}

    def recorder(*args, **kwargs):
        seen.update(kwargs, _args=args)
        raise Stop

    monkeypatch.setattr(module, name, recorder)
    return seen


def test_train_cli_builds_the_api_objects(tiny, tmp_path, capsys, monkeypatch):
    import detreduce.train as train_mod

    seen = _record(monkeypatch, train_mod, "train_yolo")
    argv = ["train", tiny, "--epochs", "3", "--imgsz", "96", "--batch", "4", "--device", "cpu"]
    argv += ["--seed", "2", "--workers", "0", "--budget", "steps", "--fraction", "0.5"]
    argv += ["--cpu-watts", "20", "--train-arg", "lr0=0.02", "--train-arg", "mosaic=0.0"]
    argv += ["--on-error", "raise", "--out", tmp_path / "run"]
    argv += ["--policy", "infobatch@prune_ratio=0.75"]
    assert run(argv, capsys)[0] == 1  # the recorder stopped it
    expected = TrainSettings.build(
        epochs=3, imgsz=96, batch=4, device="cpu", seed=2, workers=0, budget="steps",
        fraction=0.5,
    )  # fmt: skip
    assert seen["settings"] == expected
    assert seen["energy"].settings == EnergySettings.build(cpu_watts=20)
    assert seen["train_args"] == {"lr0": 0.02, "mosaic": 0.0}
    assert (seen["on_error"], seen["overwrite"]) == ("raise", False)
    assert (seen["policy"].name, seen["policy"].prune_ratio) == ("infobatch", 0.75)


def test_sweep_cli_builds_the_api_objects(tiny, tmp_path, capsys, monkeypatch):
    import detreduce.sweep as sweep_mod

    seen = _record(monkeypatch, sweep_mod, "run_sweep")
    argv = ["sweep", tiny, "--methods", "kcenter,clc", "--fractions", "0.5,0.25", "--seeds", "0,1"]
    argv += ["--epochs", "2", "--imgsz", "64", "--batch", "8", "--device", "cpu", "--workers", "0"]
    argv += ["--backbone", "hist_hog", "--balance", "classes", "--level", "box"]
    argv += [
        "--no-retry-failed",
        "--cpu-watts",
        "30",
        "--train-arg",
        "nbs=8",
        "--out",
        tmp_path / "s",
    ]
    assert run(argv, capsys)[0] == 1
    assert seen["sweep"] == SweepSettings.build(
        methods=["kcenter", "clc"], fractions=[0.25, 0.5], seeds=[0, 1], level="box",
        retry_failed=False,
    )  # fmt: skip
    assert seen["train"] == TrainSettings.build(
        epochs=2, imgsz=64, batch=8, device="cpu", workers=0
    )
    assert seen["features"] == FeatureSettings.build(backbone="hist_hog", device="cpu")
    assert seen["balance"] == BalanceSettings.build("classes")
    assert seen["energy"] == EnergySettings.build(cpu_watts=30)
    assert seen["train_args"] == {"nbs": 8}


def test_reduce_cli_builds_the_api_objects(tiny, tmp_path, capsys, monkeypatch):
    import detreduce.reduce as reduce_mod

    seen = _record(monkeypatch, reduce_mod, "reduce_dataset")
    argv = ["reduce", tiny, "--method", "k-center", "--fraction", "0.3", "--seed", "4"]
    argv += ["--level", "box", "--balance", "none", "--backbone", "hist_hog", "--device", "cpu"]
    argv += ["--on-error", "raise", "--out", tmp_path / "r"]
    assert run(argv, capsys)[0] == 1
    assert seen["settings"] == ReduceSettings.build(
        method="kcenter", fraction=0.3, seed=4, level="box"
    )
    assert seen["balance"] == BalanceSettings.build(mode="none")
    assert seen["embedding"] == FeatureSettings.build(backbone="hist_hog", device="cpu")
    assert seen["on_error"] == "raise"


def test_embed_cli_builds_the_api_objects(tiny, capsys, monkeypatch):
    import detreduce.features as features

    seen = _record(monkeypatch, features, "embed_dataset")
    argv = ["embed", tiny, "--backbone", "hist_hog", "--level", "both", "--device", "cpu"]
    argv += ["--batch-size", "4", "--workers", "0", "--image-size", "64", "--no-cache"]
    argv += ["--on-error", "raise"]
    assert run(argv, capsys)[0] == 1
    assert seen["settings"] == FeatureSettings.build(
        backbone="hist_hog", level="both", device="cpu", batch_size=4, workers=0,
        image_size=64, cache=False,
    )  # fmt: skip


def test_embed_bad_options_and_existing_out_fail_before_reading(tiny, tmp_path, capsys, spies):
    existing = tmp_path / "emb.npz"
    existing.write_bytes(b"")
    for extra, message in (
        (["--level", "boxes"], "features.level: expected one of image, box, both"),
        (["--on-error", "ignore"], "data.on_error: expected one of warn, raise"),
        (["--out", existing], "emb.npz exists; pass --overwrite"),
    ):
        code, _, err = run(["embed", tiny, "--backbone", "hist_hog", *extra], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert spies["load"].calls == [] and spies["embed"].calls == []


# ------------------------------------------------- --train-arg reaches Ultralytics
@pytest.mark.slow
def test_train_arg_reaches_ultralytics_and_on_error_warn_trains(tmp_path, capsys):
    """A real tiny training run: Ultralytics' resolved args.yaml holds the --train-arg values;
    with --on-error warn a malformed label line is reported and training goes on."""
    data = make_synthetic(tmp_path / "data", n_images=24, imgsz=64, seed=0)
    label = sorted((tmp_path / "data" / "labels" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "0 0.5 0.5\n")
    out = tmp_path / "run"
    argv = ["train", data, "--epochs", "1", "--imgsz", "64", "--batch", "8", "--device", "cpu"]
    argv += ["--workers", "0", "--train-arg", "lr0=0.02", "--train-arg", "mosaic=0.0"]
    argv += ["--on-error", "warn", "--out", out]
    code, out_text, err = run(argv, capsys)
    assert code == 0, err
    args = yaml.safe_load((out / "train" / "args.yaml").read_text())
    assert args["lr0"] == 0.02 and args["mosaic"] == 0.0
    assert (args["epochs"], args["imgsz"], args["batch"]) == (1, 64, 8)
    assert (out / "result.json").exists()
    logged = " ".join((out_text + err).split())  # the CLI's log handler wraps lines
    assert "malformed_line" in logged and label.name in logged
