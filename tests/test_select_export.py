"""One select → export path: ``detreduce reduce`` and a sweep trial write the same files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.reduce import reduce_dataset
from detreduce.sweep.grid import Protocol, TrialSpec
from detreduce.sweep.runner import TrialRunner

#: Keys whose values legitimately differ between two exports of the same selection.
VOLATILE = {"created"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    data = make_synthetic(tmp_path_factory.mktemp("synth"), n_images=40, imgsz=64, seed=1)
    ds = load_dataset(data)
    n_train = len(ds.split_indices("train"))
    X = np.random.default_rng(0).normal(size=(n_train, 8)).astype(np.float32)
    return data, ds, X


def _trial_export(data, ds, X, out, method, fraction, seed, balance, params=None):
    protocol = Protocol(
        dataset=str(data), fingerprint=ds.fingerprint(), model="yolov8n.yaml", epochs=1,
        imgsz=64, batch=8, device="cpu", budget="epochs", backbone="mobilenet_v2",
        balance=balance, level="image", workers=0, params={method: params or {}},
    )  # fmt: skip
    runner = TrialRunner(data=str(data), out=str(out), protocol=protocol, features_path="-")
    runner._cache["dataset"] = ds
    runner._cache["features"] = (X, None)
    spec = TrialSpec(method, fraction, seed, protocol.key())
    return runner._select(spec, ds, out / "data")


@pytest.mark.parametrize(
    ("method", "fraction", "seed", "balance", "params"),
    [
        ("kcenter", 0.3, 1, "classes+boxes", None),
        ("des", 0.5, 2, "classes", {"base_fraction": 0.5}),
        ("random", 0.25, 3, "classes+boxes", None),
        ("srs", 0.25, 3, "classes+boxes", None),
        ("ultralytics_fraction", 0.4, 0, "classes", None),
    ],
)
def test_reduce_and_sweep_trial_export_identically(
    synth, tmp_path, method, fraction, seed, balance, params
):
    data, ds, X = synth
    reduced = reduce_dataset(
        ds, method=method, fraction=fraction, seed=seed, balance=balance,
        params=params, features=X, embedding={"backbone": "mobilenet_v2"}, out=tmp_path / "reduce",
    )  # fmt: skip
    trial = _trial_export(data, ds, X, tmp_path / "sweep", method, fraction, seed, balance, params)

    a, b = reduced.out_dir, trial.out_dir
    assert (a / "train.txt").read_bytes() == (b / "train.txt").read_bytes()
    np.testing.assert_array_equal(reduced.kept, trial.kept)
    ma = json.loads((a / "selection.json").read_text())
    mb = json.loads((b / "selection.json").read_text())
    assert set(ma) == set(mb)
    assert {k: v for k, v in ma.items() if k not in VOLATILE} == {
        k: v for k, v in mb.items() if k not in VOLATILE
    }
    for key in ("level", "backbone", "balance", "budget", "strata", "figures", "params"):
        assert key in ma
    expected_balance = "none" if method in ("random", "ultralytics_fraction") else balance
    assert ma["balance"] == expected_balance
    assert ma["images_after"] == ma["budget"] == len(reduced.kept)
