"""InfoBatch (Qin et al., ICLR 2024) as a training policy: the rule, and a real YOLO run."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.errors import ConfigError
from detreduce.train.infobatch import InfoBatchPolicy
from detreduce.train.policy import get_policy


def _policy(n=100, epochs=8, seed=0, **params) -> InfoBatchPolicy:
    policy = get_policy("infobatch", **params)
    policy.setup(n, epochs, seed)
    return policy


def test_epoch_zero_trains_on_everything_unseen_images_are_never_pruned():
    policy = _policy()
    assert policy.epoch_indices(0).tolist() == list(range(100))
    policy.observe(np.arange(50), np.linspace(0.0, 1.0, 50))  # half seen
    kept = set(policy.epoch_indices(1).tolist())
    assert set(range(50, 100)) <= kept  # no score yet: kept


def test_below_mean_images_are_pruned_at_the_ratio_and_the_kept_ones_rescaled():
    losses = np.random.default_rng(0).gamma(2.0, size=100)
    policy = _policy(prune_ratio=0.3)
    policy.epoch_indices(0)
    policy.observe(np.arange(100), losses)
    kept = policy.epoch_indices(1)
    well = np.flatnonzero(losses < losses.mean())
    n_keep = int(0.7 * len(well))
    assert len(kept) == 100 - (len(well) - n_keep)
    assert set(np.flatnonzero(losses >= losses.mean())) <= set(kept.tolist())  # hard: all kept
    weights = policy.loss_weights(kept)
    rescaled = kept[weights > 1]
    assert set(rescaled.tolist()) == set(kept.tolist()) & set(well.tolist())
    assert weights[weights > 1] == pytest.approx(1 / 0.7) and set(weights) <= {1.0, 1 / 0.7}
    assert policy.epoch_indices(1) is kept  # asked again within the epoch: the same answer
    assert policy.report()["pruned_per_epoch"] == [0, len(well) - n_keep]


def test_rescaling_keeps_the_epochs_expected_loss_unbiased():
    """E[sum over kept of w_i * L_i] = sum over all of L_i (the paper's unbiasedness)."""
    losses = np.random.default_rng(1).gamma(2.0, size=200)
    ratios = []
    for seed in range(300):
        policy = _policy(n=200, seed=seed, prune_ratio=0.5)
        policy.epoch_indices(0)
        policy.observe(np.arange(200), losses)
        kept = policy.epoch_indices(1)
        ratios.append(float((policy.loss_weights(kept) * losses[kept]).sum() / losses.sum()))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.005)
    assert np.std(ratios) > 0  # the pruned set really varies with the seed


def test_the_last_epochs_anneal_to_full_data_with_unit_weights():
    policy = _policy(epochs=8, delta=0.75)  # epochs 0-5 may prune, 6 and 7 do not
    losses = np.arange(100, dtype=float)
    for epoch in range(8):
        kept = policy.epoch_indices(epoch)
        policy.observe(kept, losses[kept])
        pruned = 100 - len(kept)
        assert (pruned > 0) == (1 <= epoch < 6), epoch
        if epoch >= 6:
            assert (policy.loss_weights(kept) == 1).all()
    assert policy.annealing_epochs == 2
    short = _policy(epochs=4)  # 0.125 x 4 rounds to 0: one full epoch all the same
    assert short.annealing_epochs == 1 and not short.prunes(3) and short.prunes(2)
    assert _policy(delta=1.0).annealing_epochs == 0


def test_same_seed_same_subsets_another_seed_others():
    def subsets(seed):
        policy = _policy(seed=seed)
        out = []
        for epoch in range(4):
            kept = policy.epoch_indices(epoch)
            policy.observe(kept, np.sin(kept + epoch) + 1.0)
            out.append(kept.tolist())
        return out

    assert subsets(0) == subsets(0) and subsets(0) != subsets(1)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"prune_ratio": 1.0}, r"prune_ratio must be in \[0, 1\), got 1.0"),
        ({"prune_ratio": -0.1}, "prune_ratio"),
        ({"delta": 0.0}, r"delta must be in \(0, 1\], got 0.0"),
        ({"delta": 1.5}, "delta"),
        ({"prune_ratio": True}, "prune_ratio"),
    ],
)
def test_bad_parameters_are_one_line_errors_before_training(params, match):
    with pytest.raises(ConfigError, match=match) as info:
        get_policy("infobatch", **params)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_infobatch_inside_the_ultralytics_trainer(tmp_path):
    """A real run: epoch 0 full, pruned middle epochs, full annealing epoch, every image
    scored from the per-image loss, images forwarded = what the policy scheduled."""
    from detreduce.data.synthetic import make_synthetic
    from detreduce.train import train_yolo

    data = make_synthetic(tmp_path / "data", n_images=40, imgsz=64, seed=0)
    policy = get_policy("infobatch", prune_ratio=0.5, delta=0.75)
    r = train_yolo(
        data, out_dir=tmp_path / "run", policy=policy, epochs=4, imgsz=64, batch=8,
        device="cpu", seed=0, workers=0, train_args={"nbs": 8},
    )  # fmt: skip
    report = r.policy
    n = r.n_train_images
    forwarded = report["forwarded_per_epoch"]
    assert forwarded[0] == n and forwarded[3] == n  # first epoch and the annealing one
    assert all(f < n for f in forwarded[1:3])  # pruned epochs
    assert forwarded == report["scheduled_per_epoch"]
    assert [n - f for f in forwarded] == report["pruned_per_epoch"]
    assert report["images_scored"] == n and r.images_seen == sum(forwarded) < 4 * n
    assert 0 < report["seconds_policy"] < r.seconds_training
