"""detreduce.train.policy + the policy seam of MeteredTrainer: the sampler decides what trains.

Fast tests check the policy contract (registry, seeded order, validation) and the
loader's one-epoch-per-iteration mechanism on a toy dataset. The slow ones train
yolov8n from scratch on a 9-image synthetic split at imgsz 64 (2 epochs, batch 2, cpu)
and count, batch by batch, which dataset indices were really forwarded.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError
from detreduce.train.policy import POLICIES, FullPolicy, TrainingPolicy, get_policy

EPOCHS = 2


class Fixed(TrainingPolicy):
    """Forwards the same images every epoch."""

    name = "fixed"

    def __init__(self, keep: tuple[int, ...] = (0, 2)) -> None:
        self.keep = keep

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return np.asarray(self.keep)


class PerEpoch(TrainingPolicy):
    """Epoch 0 forwards {0, 1}, epoch 1 {2, 3}: a stale (prefetched) subset would show."""

    name = "per_epoch"

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return np.array([0, 1]) if epoch == 0 else np.array([2, 3])


# ------------------------------------------------------------------ registry and contract
def test_get_policy_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="(?i)did you mean: full"):
        get_policy("ful")
    with pytest.raises(ConfigError, match="unknown parameter ratio"):
        get_policy("full", ratio=0.5)
    assert isinstance(get_policy("Full"), FullPolicy) and POLICIES["full"] is FullPolicy


def test_full_is_in_the_method_catalog_as_a_training_method():
    from detreduce.methods import get_method

    spec = get_method("full")
    assert spec.kind == "training" and not spec.uses_features
    assert isinstance(spec.create(), FullPolicy)


def test_policy_module_imports_neither_torch_nor_ultralytics():
    import subprocess
    import sys

    code = (
        "import sys, detreduce.train.policy; "
        "print(any(m.split('.')[0] in {'torch', 'ultralytics'} for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_order_is_a_permutation_seeded_by_seed_and_epoch():
    policy = FullPolicy()
    policy.setup(50, 3, seed=0)
    e0, e1 = policy.order(0), policy.order(1)
    assert sorted(e0) == list(range(50)) and sorted(e1) == list(range(50))
    assert not np.array_equal(e0, e1) and np.array_equal(e0, policy.order(0))
    other = FullPolicy()
    other.setup(50, 3, seed=1)
    assert not np.array_equal(other.order(0), e1)  # (seed 1, epoch 0) is not (seed 0, epoch 1)
    assert np.array_equal(policy.order(0, shuffle=False), np.arange(50))
    assert policy.report()["scheduled_per_epoch"] == [50, 50]


def test_order_shards_like_distributed_sampler():
    policy = Fixed(keep=(0, 1, 2, 3, 4))
    policy.setup(10, 1, seed=0)
    shards = [policy.order(0, rank=r, world_size=2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3  # 5 padded to 6 by repetition
    assert set(np.concatenate(shards)) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (np.array([0, 10]), r"indices in \[0, 10\], expected \[0, 9\]"),
        (np.array([-1]), "expected"),
        (np.array([], dtype=int), "no images"),
        (np.array([0.5, 1.0]), "integer indices"),
        (np.zeros((2, 2), dtype=int), "1-D"),
        (np.ones(3, dtype=bool), r"mask of shape \(3,\)"),
    ],
)
def test_order_rejects_bad_answers(answer, match):
    class Bad(TrainingPolicy):
        name = "bad"

        def epoch_indices(self, epoch):
            return answer

    policy = Bad()
    policy.setup(10, 1, seed=0)
    with pytest.raises(ConfigError, match=match):
        policy.order(0)


def test_boolean_mask_selects_images():
    policy = Fixed(keep=np.arange(6) % 2 == 0)
    policy.setup(6, 1, seed=0)
    assert sorted(policy.order(0)) == [0, 2, 4]


# ------------------------------------------------------------------ the loader (no training)
class _Toy:
    """A map-style dataset that looks like YOLODataset to the loader (im_files, collate)."""

    def __init__(self, n: int) -> None:
        self.im_files = [f"im{i}.jpg" for i in range(n)]

    def __len__(self) -> int:
        return len(self.im_files)

    def __getitem__(self, i: int) -> dict:
        return {"im_file": self.im_files[i]}

    @staticmethod
    def collate_fn(batch: list[dict]) -> dict:
        return {"im_file": tuple(b["im_file"] for b in batch)}


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_draws_each_epoch_when_it_is_iterated(workers):
    from detreduce.train.trainer import INDEX_KEY, PolicyDataLoader, PolicySampler

    policy = PerEpoch()
    policy.setup(8, 2, seed=0)
    sampler = PolicySampler(policy)
    loader = PolicyDataLoader(
        _Toy(8),
        sampler=sampler,
        batch_size=1,
        drop_last=False,
        nominal_batches=8,
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=_Toy.collate_fn,
    )
    seen = []
    for epoch in range(2):
        sampler.set_epoch(epoch)  # what MeteredTrainer does at on_train_epoch_start
        stale = iter(loader)  # Ultralytics' discarded first enumerate(): must draw nothing
        del stale
        seen.append(sorted(int(i) for b in loader for i in b[INDEX_KEY]))
        assert loader.epoch_batches == 2 and len(loader) == 8  # exact vs nominal
    loader.close()
    assert seen == [[0, 1], [2, 3]]


def test_a_policy_that_reads_or_weights_losses_declares_it():
    from detreduce.train.trainer import MeteredTrainer, make_trainer

    class Observer(TrainingPolicy):
        name = "observer"

        def observe(self, indices, per_image_loss):
            pass

    assert Observer().needs_losses and get_policy("infobatch").needs_losses
    assert not Fixed().needs_losses and not get_policy("full").needs_losses
    with pytest.raises(ConfigError, match="TrainingPolicy"):
        make_trainer("full")
    bound = make_trainer(policy := Fixed())
    assert issubclass(bound, MeteredTrainer) and bound.policy is policy


# ------------------------------------------------------------------ real trainings
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 12-image synthetic set: 9 train, 3 val images."""
    return make_synthetic(tmp_path_factory.mktemp("policy"), n_images=12, imgsz=64, seed=0)


def _train(data_yaml: Path, out: Path, policy: TrainingPolicy, workers: int = 0, **train_args: Any):
    """Train through MeteredTrainer directly; return the trainer and (epoch, indices) per batch.

    Ultralytics forces workers=0 on CPU; the trainer subclass restores ``workers`` so
    the multi-process (prefetching) path runs here too.
    """
    from detreduce.train.datayaml import resolve_data_yaml
    from detreduce.train.offline import offline_ultralytics, quiet_ultralytics
    from detreduce.train.trainer import make_trainer
    from detreduce.train.yolo import _preserved_global_state

    resolved = resolve_data_yaml(data_yaml).write(out / "data.yaml")

    class Trainer(make_trainer(policy)):
        def get_dataloader(self, *args, **kwargs):
            self.args.workers = workers
            return super().get_dataloader(*args, **kwargs)

    batches: list[tuple[int, list[int]]] = []
    with offline_ultralytics([out]), quiet_ultralytics(False), _preserved_global_state():
        from ultralytics import YOLO

        yolo = YOLO("yolov8n.yaml")
        yolo.add_callback(
            "on_train_batch_end",
            lambda tr: batches.append((int(tr.epoch), tr.batch_indices.tolist())),
        )
        yolo.train(
            trainer=Trainer,
            data=str(resolved),
            epochs=EPOCHS,
            imgsz=64,
            batch=2,
            device="cpu",
            workers=workers,
            seed=0,
            deterministic=True,
            amp=False,
            val=False,
            plots=False,
            project=str(out),
            name="train",
            exist_ok=True,
            verbose=False,
            **train_args,
        )
    return yolo.trainer, batches


@pytest.mark.slow
def test_sampler_decides_what_is_forwarded(tiny, tmp_path):
    trainer, batches = _train(tiny, tmp_path, Fixed(keep=(0, 2)))
    assert [sorted(ix) for _, ix in batches] == [[0, 2]] * EPOCHS  # one batch of 2 per epoch
    expected = np.zeros(9, dtype=int)
    expected[[0, 2]] = EPOCHS
    assert trainer.image_counts.tolist() == expected.tolist()  # the others: never forwarded
    assert trainer.images_seen == 2 * EPOCHS and trainer.iterations == EPOCHS
    assert trainer.epochs_run == EPOCHS and 1 <= trainer.optimizer_steps <= EPOCHS
    # nb (warm-up, step position) stays the nominal full-split count; the epoch is 1 batch
    assert len(trainer.train_loader) == 5 and trainer.train_loader.epoch_batches == 1
    report = trainer.policy_report
    assert report["name"] == "fixed" and report["params"] == {"keep": [0, 2]}
    assert report["scheduled_per_epoch"] == report["forwarded_per_epoch"] == [2] * EPOCHS
    assert (report["distinct_forwarded"], report["n_images"]) == (2, 9)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_each_epoch_subset_is_drawn_at_iteration_time(tiny, tmp_path, workers):
    trainer, batches = _train(tiny, tmp_path, PerEpoch(), workers=workers)
    assert trainer.train_loader.num_workers == workers
    assert [(e, sorted(ix)) for e, ix in batches] == [(0, [0, 1]), (1, [2, 3])]
    assert trainer.policy_report["forwarded_per_epoch"] == [2, 2]
    assert trainer.image_counts.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]


def _losses(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "train" / "results.csv") as fh:
        return [
            (row["train/box_loss"], row["train/cls_loss"], row["train/dfl_loss"])
            for row in csv.DictReader(fh)
        ]


@pytest.mark.slow
def test_full_policy_forwards_every_image_each_epoch_like_no_policy(tiny, tmp_path):
    import torch

    from detreduce.train import train_yolo

    args = dict(epochs=EPOCHS, imgsz=64, batch=2, device="cpu", seed=0, workers=0)
    full = train_yolo(tiny, out_dir=tmp_path / "full", policy=get_policy("full"), **args)
    plain = train_yolo(tiny, out_dir=tmp_path / "plain", **args)
    report = full.policy
    assert report["name"] == "full" and report["n_images"] == full.n_train_images == 9
    assert report["forwarded_per_epoch"] == [9] * EPOCHS == report["scheduled_per_epoch"]
    assert report["per_image_min"] == report["per_image_max"] == EPOCHS  # each once per epoch
    assert full.images_seen == 9 * EPOCHS and full.iterations == 5 * EPOCHS
    timing = ("seconds_policy",)  # the only figure two identical runs may differ in
    assert {k: v for k, v in plain.policy.items() if k not in timing} == {
        k: v for k, v in report.items() if k not in timing
    }  # no policy is the full policy
    assert _losses(tmp_path / "full") == _losses(tmp_path / "plain")
    for key in ("map50", "map50_95", "precision", "recall", "steps"):
        assert getattr(full, key) == getattr(plain, key), key
    a = torch.load(full.weights, map_location="cpu", weights_only=False)["model"].state_dict()
    b = torch.load(plain.weights, map_location="cpu", weights_only=False)["model"].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Weighted(TrainingPolicy):
    """Every image, every epoch; even dataset indices weighted ``even``, odd ones 1 (test)."""

    name = "weighted"

    def __init__(self, even: float = 1.0) -> None:
        self.even = even

    def loss_weights(self, indices):
        return np.where(np.asarray(indices) % 2 == 0, float(self.even), 1.0)


@pytest.mark.slow
def test_loss_weights_reach_the_gradients(tiny, tmp_path):
    """Unit weights through the per-image criterion train exactly as Ultralytics' own loss;
    weighting some images 3x trains differently: the weights are applied, not ignored.
    (A uniform factor would not show it: Ultralytics' AdamW is invariant to loss scale.)"""
    import torch

    def weights_of(trainer):
        ckpt = torch.load(trainer.last, map_location="cpu", weights_only=False)
        return ckpt["model"].state_dict()

    # SGD, a step per batch, no warm-up: AdamW's first steps are sign(gradient) steps
    sgd = dict(optimizer="SGD", lr0=0.01, nbs=2, warmup_epochs=0)
    plain, _ = _train(tiny, tmp_path / "plain", get_policy("full"), **sgd)
    ones, _ = _train(tiny, tmp_path / "ones", Weighted(1.0), **sgd)
    three, _ = _train(tiny, tmp_path / "three", Weighted(3.0), **sgd)
    assert plain.optimizer_steps == ones.optimizer_steps == 5 * EPOCHS
    assert ones.per_image_loss is not None and plain.per_image_loss is None
    a, b, c = weights_of(plain), weights_of(ones), weights_of(three)
    floats = [k for k in a if a[k].is_floating_point() and "running" not in k]
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in floats)
    assert not all(torch.allclose(a[k], c[k], rtol=1e-5, atol=1e-7) for k in floats)
    assert ones.policy_report["seconds_policy"] > 0
