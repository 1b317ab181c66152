"""Sweeps on a real local Ray cluster: the same rows as the local backend, and a worker
that dies mid-trial becomes one failed row."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from detreduce.errors import ConfigError  # noqa: E402
from detreduce.sweep import read_results, run_sweep  # noqa: E402
from detreduce.sweep.grid import TrialSpec  # noqa: E402
from detreduce.sweep.ray_backend import RayBackend  # noqa: E402

# one torch thread, no loader workers: training is deterministic whatever runs beside it
TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "workers": 0, "threads": 1}
GRID = {"methods": ["ultralytics-fraction", "srs"], "fractions": [0.5], "seeds": [0]}


@pytest.fixture(scope="module")
def local_ray():
    """A Ray head on this machine (127.0.0.1, 2 CPUs), shut down after the module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test classes by value
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from detreduce.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth"), n_images=24, imgsz=64, seed=0)


def _kept(out: Path, run_id: str) -> list:
    selection = json.loads(next((out / "runs" / run_id).rglob("selection.json")).read_text())
    return selection["kept_images"]


@pytest.mark.slow
def test_ray_backend_gives_the_local_backends_rows(local_ray, tiny_data, tmp_path):
    local = run_sweep(tiny_data, tmp_path / "local", sweep=GRID, train=TINY)
    on_ray = run_sweep(tiny_data, tmp_path / "ray", sweep={**GRID, "backend": "ray"}, train=TINY)
    assert local.failed == on_ray.failed == 0 and local.total == on_ray.total == 4
    a = read_results(tmp_path / "local").set_index("run_id").sort_index()
    b = read_results(tmp_path / "ray").set_index("run_id").sort_index()
    assert list(a.index) == list(b.index)  # same run ids: same trials
    for col in ("n_kept", "map50", "map50_95", "precision", "recall", "images_seen", "steps"):
        assert a[col].tolist() == b[col].tolist(), col
    for run_id in a.index:
        assert _kept(tmp_path / "local", run_id) == _kept(tmp_path / "ray", run_id)
    # each trial metered itself in its own worker process
    assert (b["kwh_training"] > 0).all() and (b["seconds_training"] > 0).all()


@pytest.mark.slow
def test_a_ray_sweep_embeds_on_ray_actors_and_selects_what_the_local_one_does(
    local_ray, tiny_data, tmp_path
):
    grid = {"methods": ["kcenter"], "fractions": [0.5], "seeds": [0]}
    features = {"device": "cpu", "shard_images": 10}
    local = run_sweep(tiny_data, tmp_path / "local", sweep=grid, train=TINY, features=features)
    on_ray = run_sweep(
        tiny_data, tmp_path / "ray", sweep={**grid, "backend": "ray"}, train=TINY,
        features=features,
    )  # fmt: skip
    assert local.failed == on_ray.failed == 0
    info = json.loads((tmp_path / "ray" / "embedding.json").read_text())
    assert info["embedding_backend"] == "ray" and info["kwh"] > 0
    assert (
        json.loads((tmp_path / "local" / "embedding.json").read_text())["embedding_backend"]
        == "local"
    )
    import numpy as np

    a = np.load(tmp_path / "local" / "embeddings.npz")["image"]
    b = np.load(tmp_path / "ray" / "embeddings.npz")["image"]
    assert np.abs(a - b).max() <= 1e-5
    rows = read_results(tmp_path / "ray")
    (run_id,) = rows.loc[rows["method"] == "kcenter", "run_id"]
    assert _kept(tmp_path / "local", run_id) == _kept(tmp_path / "ray", run_id)


class DyingRunner:
    """A trial runner whose worker process dies mid-trial (as if killed or out of memory)."""

    def __init__(self, data: str, out: str) -> None:
        self.data, self.out = data, out

    def __call__(self, spec: TrialSpec):
        os._exit(1)


class PathCheckRunner(DyingRunner):
    def __call__(self, spec: TrialSpec):  # never reached: the path check fails first
        raise AssertionError("ran without its dataset")


@pytest.mark.slow
def test_a_worker_that_dies_is_one_failed_row_not_a_lost_one(local_ray, tmp_path):
    specs = [TrialSpec("random", 0.5, seed, "k") for seed in (0, 1)]
    runner = DyingRunner(str(tmp_path), str(tmp_path))
    records = list(RayBackend().run(specs, runner))
    assert sorted(r.run_id for r in records) == sorted(s.run_id for s in specs)  # one each
    assert all(r.status == "failed" and r.error.startswith("Ray task failed") for r in records)
    assert all("\n" not in r.error for r in records)
    missing = PathCheckRunner(str(tmp_path / "nowhere"), str(tmp_path))
    (record,) = RayBackend().run(specs[:1], missing)
    assert record.status == "failed" and "cannot see the dataset" in record.error


def test_bad_ray_settings_are_one_line_errors():
    from detreduce.settings import SweepSettings

    with pytest.raises(ConfigError, match="sweep.ray_address"):
        SweepSettings.build(ray_address="not an address")
    with pytest.raises(ConfigError, match="sweep.cpus_per_trial"):
        SweepSettings.build(cpus_per_trial=0)
    assert SweepSettings.build(ray_address="auto").ray_address == "auto"
