"""Torch CPU threads and loader workers for training (detreduce.train.threads).

The rule is a pure function of (setting, device, cores, load): tested from a table.
Two tiny real trainings (24 synthetic images at 64 px, 1 epoch, the same settings)
show that the setting reaches torch inside training and validation although
Ultralytics' ``select_device`` resets it, that the train loader gets the workers asked
for although Ultralytics zeroes them on CPU, that the caller's count comes back after,
and that the same seed, threads and workers give the same run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detreduce.device import cpu_cores, cpu_threads, loader_workers, others_load
from detreduce.errors import ConfigError
from detreduce.settings import TrainSettings
from detreduce.train.threads import ThreadPlan, plan_threads, restored_threads


# ------------------------------------------------------------------ the rule
@pytest.mark.parametrize(
    ("threads", "workers", "device", "cores", "load", "expected"),
    [
        ("auto", "auto", "cpu", 1, 0.0, (1, 0)),
        ("auto", "auto", "cpu", 2, 0.3, (2, 0)),  # this machine: both cores to torch
        ("auto", "auto", "cpu", 2, 2.0, (2, 0)),  # load == cores is not busy yet
        ("auto", "auto", "cpu", 2, 2.5, (1, 0)),  # others already fill the cores
        ("auto", 2, "cpu", 2, 0.3, (2, 2)),  # explicit workers do not lower threads
        ("auto", "auto", "cpu", 4, 0.0, (3, 1)),
        ("auto", "auto", "cpu", 8, 1.0, (6, 2)),
        ("auto", "auto", "cpu", 16, 0.0, (12, 4)),
        ("auto", "auto", "cpu", 64, 10.0, (60, 4)),  # loaders capped at 4
        ("auto", "auto", "cpu", 16, 20.0, (1, 4)),
        (3, 0, "cpu", 2, 9.0, (3, 0)),  # numbers as given, whatever the load
        ("auto", 0, "cpu", 16, 0.0, (12, 0)),
        ("auto", "auto", "cuda", 16, 0.0, (None, 8)),  # GPU: Ultralytics' threads and workers
        ("auto", "auto", "mps", 8, 0.0, (None, 8)),
        (4, 2, "cuda", 16, 0.0, (4, 2)),
    ],
)
def test_plan_threads(threads, workers, device, cores, load, expected):
    plan = plan_threads(threads, workers, device, cores=cores, load=load)
    assert (plan.threads, plan.workers) == expected
    assert plan.why


@pytest.mark.parametrize(
    ("cores", "load", "reserved", "expected"),
    [(2, 0.0, 0, 2), (2, 0.0, 2, 1), (8, 3.0, 2, 6), (8, 8.5, 2, 1), (1, 0.0, 4, 1)],
)
def test_cpu_threads_is_the_embedding_rule_too(cores, load, reserved, expected):
    assert cpu_threads(cores, load, reserved=reserved) == expected


def test_loader_workers_table():
    assert [loader_workers(c) for c in (1, 2, 3, 4, 8, 12, 16, 64)] == [0, 0, 1, 1, 2, 3, 4, 4]


def test_cpu_cores_reads_the_affinity_mask_else_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert cpu_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert cpu_cores() == 64


def test_others_load_leaves_out_this_process(monkeypatch):
    import time

    import psutil

    class Busy:  # a process 10 minutes old that kept one core busy all along
        def create_time(self):
            return time.time() - 600.0

        def cpu_times(self):
            return (500.0, 50.0, 40.0, 10.0, 0.0)

    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    monkeypatch.setattr(psutil, "Process", Busy)
    assert others_load() == pytest.approx(2.0, abs=1e-3)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert others_load() == 0.0  # never below zero
    monkeypatch.delattr(os, "getloadavg")
    assert others_load() == 0.0


@pytest.mark.parametrize(
    ("given", "threads", "workers"),
    [({}, "auto", "auto"), ({"threads": "3", "workers": "2"}, 3, 2), ({"threads": 1}, 1, "auto")],
)
def test_settings_accept_auto_and_numbers(given, threads, workers):
    cfg = TrainSettings.build(**given)
    assert (cfg.threads, cfg.workers) == (threads, workers)


@pytest.mark.parametrize("bad", [{"threads": 0}, {"threads": "many"}, {"workers": -1}])
def test_settings_reject_bad_threads_and_workers(bad):
    with pytest.raises(ConfigError, match=r"expected auto or an integer"):
        TrainSettings.build(**bad)


def test_gpu_plan_leaves_ultralytics_alone_and_threads_come_back():
    import torch

    class Model:
        def __init__(self):
            self.events = []

        def add_callback(self, event, fn):
            self.events.append(event)

    gpu, cpu = Model(), Model()
    ThreadPlan(threads=None, workers=8).attach(gpu)
    ThreadPlan(threads=2, workers=0).attach(cpu)
    assert gpu.events == ["on_pretrain_routine_start"]  # the workers only
    assert cpu.events == ["on_pretrain_routine_start", "on_val_start"]
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), restored_threads():
        ThreadPlan(threads=before + 1, workers=0).apply()
        assert torch.get_num_threads() == before + 1
        raise RuntimeError("training failed")
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------ real trainings
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from detreduce.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("tiny"), n_images=24, imgsz=64, seed=0)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """Two runs with the same seed and threads; torch threads read inside train and val."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import NUM_THREADS

    chosen = NUM_THREADS + 1  # not what Ultralytics' select_device sets (1 on 2 cores)
    caller = NUM_THREADS + 2  # what the caller had before: comes back after
    saved = torch.get_num_threads()
    out = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DETREDUCE_RUNS", str(tmp_path_factory.mktemp("runs")))
        train_threads: list[int] = []
        val_threads: list[int] = []
        update = DetectionValidator.update_metrics

        def recording_update(self, *args, **kwargs):
            val_threads.append(torch.get_num_threads())
            return update(self, *args, **kwargs)

        mp.setattr(DetectionValidator, "update_metrics", recording_update)
        from detreduce.train import train_yolo

        for name in ("a", "b"):
            torch.set_num_threads(caller)
            train_threads.clear()
            val_threads.clear()
            result = train_yolo(
                tiny_data,
                out_dir=tmp_path_factory.mktemp("run") / name,
                epochs=1, imgsz=64, batch=8, device="cpu", seed=0, workers=2, threads=chosen,
                on_epoch_end=lambda done, total: train_threads.append(torch.get_num_threads()),
            )  # fmt: skip
            after = torch.get_num_threads()
            out.append(
                dict(result=result, train=list(train_threads), val=list(val_threads), after=after)
            )
    torch.set_num_threads(saved)
    return {"chosen": chosen, "caller": caller, "runs": out}


@pytest.mark.slow
def test_threads_reach_training_and_validation_and_come_back(runs):
    first = runs["runs"][0]
    assert first["train"] == [runs["chosen"]]  # read in on_train_epoch_end, inside training
    assert first["val"] and set(first["val"]) == {runs["chosen"]}  # every val batch
    assert first["after"] == runs["caller"]  # the caller's count restored
    r = first["result"]
    assert (r.threads, r.workers) == (runs["chosen"], 2)  # Ultralytics alone: 0 workers on CPU
    row = r.to_dict()
    assert (row["threads"], row["workers"]) == (runs["chosen"], 2)
    del row["threads"]  # a result.json written before threads were recorded
    assert r.from_dict(row).threads is None


@pytest.mark.slow
def test_same_seed_same_threads_same_run(runs):
    import torch

    a, b = (run["result"] for run in runs["runs"])
    for key in ("map50", "map50_95", "precision", "recall", "steps", "images_seen", "threads"):
        assert getattr(a, key) == getattr(b, key), key
    wa, wb = (torch.load(r.weights, map_location="cpu", weights_only=False) for r in (a, b))
    sa, sb = ((w.get("ema") or w["model"]).state_dict() for w in (wa, wb))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
