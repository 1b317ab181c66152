"""CREST (Yang et al., ICML 2023) as a training policy: the selection, the re-selection
rule, dropping learned images, and a real YOLO run."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.errors import ConfigError
from detreduce.train.crest import CrestPolicy, facility_location, loss_proxy
from detreduce.train.policy import POLICIES, get_policy


def _policy(n=100, epochs=8, seed=0, **params) -> CrestPolicy:
    policy = get_policy("crest", **params)
    policy.setup(n, epochs, seed)
    return policy


def _run(policy, losses_at, epochs, start=0):
    """Play the trainer: each epoch's order (sorted here), then the forwarded images' losses."""
    answers = []
    for epoch in range(start, epochs):
        idx = policy.order(epoch)
        policy.observe(idx, losses_at(epoch)[idx])
        answers.append(np.sort(idx))
    return answers


def _base(n=100, seed=0):
    return 1.0 + np.random.default_rng(seed).gamma(2.0, size=n)


# ------------------------------------------------------------------ the selection
def test_facility_location_covers_every_cluster_and_weights_count_what_they_represent():
    rng = np.random.default_rng(0)
    sizes = [5, 15, 30, 50]
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((s, 2)) for c, s in zip(centers, sizes)])
    label = np.repeat(np.arange(4), sizes)
    chosen, weights = facility_location(x, 8, np.random.default_rng(1))
    assert len(set(chosen.tolist())) == 8
    assert set(label[chosen].tolist()) == {0, 1, 2, 3}  # the 5-image cluster too
    assert weights.sum() == 100 and (weights >= 1).all()
    for c, size in enumerate(sizes):  # each cluster's weight is its size
        assert weights[label[chosen] == c].sum() == size
    every, ones = facility_location(x, 100, np.random.default_rng(1))
    assert sorted(every.tolist()) == list(range(100)) and (ones == 1).all()
    same = np.zeros((6, 2))  # equal proxies: every selected image still weighs >= 1
    assert (facility_location(same, 3, np.random.default_rng(0))[1] >= 1).all()


def test_loss_proxy_fills_unseen_history_and_standardizes():
    history = np.array([[2.0, np.nan, np.nan], [4.0, 3.0, np.nan], [6.0, 5.0, 1.0]])
    proxy = loss_proxy(history)
    assert np.allclose(proxy.mean(0), 0) and np.allclose(proxy.std(0), 1)
    filled = np.array([[2.0, 2.0, 2.0], [4.0, 3.0, 3.0], [6.0, 5.0, 1.0]])
    assert np.allclose(proxy, (filled - filled.mean(0)) / filled.std(0))


def test_a_coreset_epoch_covers_every_loss_cluster_with_weights_averaging_one():
    n = 120
    group = np.arange(n) % 4
    noise = np.random.default_rng(0).uniform(0, 0.05, n)
    losses = np.array([0.5, 1.5, 3.0, 6.0])[group] + noise
    policy = _policy(n=n, fraction=0.5, subset_size=40, history=1)  # 3 random subsets
    _run(policy, lambda e: losses, 1)
    idx = policy.epoch_indices(1)
    assert len(idx) == 60 == len(set(idx.tolist()))
    assert set(group[idx].tolist()) == {0, 1, 2, 3}
    w = policy.loss_weights(idx)
    assert w.mean() == pytest.approx(1.0) and (w > 0).all()
    for g in range(4):  # each cluster's 30 images, represented at fraction 0.5
        assert w[group[idx] == g].sum() == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [({}, 30), ({"subset_size": 7}, 30), ({"n_subsets": 2, "subset_size": 20}, 30)],
)
def test_warm_up_forwards_everything_then_epochs_forward_the_fraction(params, expected):
    policy = _policy(fraction=0.3, warmup_epochs=2, **params)
    answers = _run(policy, lambda e: _base() * 0.99**e, 2)
    for epoch in (0, 1):
        assert answers[epoch].tolist() == list(range(100))
    assert (policy.loss_weights(answers[1]) == 1).all()
    answers += _run(policy, lambda e: _base() * 0.99**e, 4, start=2)
    assert [len(a) for a in answers[2:]] == [expected, expected]
    again = policy.epoch_indices(3)  # asked again within the epoch: the same answer
    assert again is policy.epoch_indices(3) and again.tolist() == answers[3].tolist()
    report = policy.report()
    assert report["scheduled_per_epoch"] == [100, 100, expected, expected]
    assert report["selection_epochs"] == [2] and report["images_scored"] == 100


# ------------------------------------------------------------------ re-selection
@pytest.mark.parametrize(
    ("rate", "params", "selections"),
    [
        (1.0, {"max_interval": 100}, [1]),  # stable: the first coreset lives on
        (0.8, {"max_interval": 100}, [1, 2, 3, 4, 5, 6, 7]),  # 20 % drift every epoch
        (1.0, {"max_interval": 3}, [1, 4, 7]),  # stable, but at most 3 epochs old
    ],
)
def test_reselects_when_the_coreset_loss_drifts_past_tau_and_not_when_stable(
    rate, params, selections
):
    policy = _policy(tau=0.1, **params)
    base = _base()
    _run(policy, lambda e: base * rate**e, 8)
    report = policy.report()
    assert report["selection_epochs"] == selections
    assert report["selections"] == len(selections)


def test_drift_is_the_relative_change_of_the_coreset_loss_since_selection():
    policy = _policy(tau=0.1, max_interval=100)
    base = _base()
    _run(policy, lambda e: base * 0.95**e, 5)
    drift = policy.report()["drift_per_epoch"]
    assert drift[:2] == [None, None]  # warm-up, then the first selection
    assert drift[2:5] == pytest.approx([0.05, 1 - 0.95**2, 1 - 0.95**3])
    assert policy.report()["selection_epochs"] == [1, 4]  # 0.0975 < tau < 0.1426


def test_same_seed_same_coresets_another_seed_others():
    def coresets(seed):
        policy = _policy(seed=seed, max_interval=1)
        base = _base()
        answers = _run(policy, lambda e: base * (1 + 0.3 * np.sin(np.arange(100) + e)), 4)
        return [a.tolist() for a in answers], policy.loss_weights(answers[-1]).tolist()

    assert coresets(0) == coresets(0) and coresets(0) != coresets(1)


# ------------------------------------------------------------------ dropping learned images
def test_learned_images_leave_the_pool_for_good_above_a_floor():
    n = 100
    rng = np.random.default_rng(0)
    losses = np.where(np.arange(n) < 50, 0.01, 1.0) + rng.uniform(0, 0.005, n)
    policy = _policy(n=n, fraction=0.2, max_interval=1, drop_after=1, drop_quantile=0.5)
    dropped = np.zeros(n, dtype=bool)
    for epoch in range(8):
        idx = policy.epoch_indices(epoch)
        newly = policy.dropped_ & ~dropped
        if epoch == 2:
            assert newly.any() and (np.flatnonzero(newly) < 50).all()  # the learned ones
        assert not dropped[idx].any() and not policy.dropped_[idx].any()
        dropped = policy.dropped_.copy()
        policy.observe(idx, losses[idx])
    report = policy.report()
    assert report["images_dropped"] == dropped.sum() == sum(report["dropped_per_epoch"]) > 0
    assert n - dropped.sum() >= 2 * 20  # the floor: min(n, 2 K)
    assert _policy(n=n).report()["images_dropped"] == 0  # off by default


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"fraction": 0.0}, r"fraction must be a number in \(0, 1\], got 0.0"),
        ({"fraction": 1.5}, "fraction"),
        ({"fraction": True}, "fraction"),
        ({"subset_size": 1}, r"subset_size must be an integer in \[2, 2000\], got 1"),
        ({"subset_size": 5000}, "subset_size"),
        ({"subset_size": 10.0}, "subset_size"),
        ({"n_subsets": 0}, r"n_subsets must be an integer >= 1 or None, got 0"),
        ({"history": 0}, "history"),
        ({"tau": 0}, r"tau must be a number in \(0, inf\), got 0"),
        ({"tau": float("nan")}, "tau"),
        ({"max_interval": 0}, "max_interval"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"drop_after": 0}, "drop_after"),
        ({"drop_quantile": 1.0}, "drop_quantile"),
    ],
)
def test_bad_parameters_are_one_line_errors_before_training(params, match):
    with pytest.raises(ConfigError, match=match) as info:
        get_policy("crest", **params)
    assert "\n" not in str(info.value)


def test_too_few_subset_images_for_the_budget_fail_at_setup():
    with pytest.raises(ConfigError, match="cannot fill fraction") as info:
        _policy(n=100, n_subsets=2, subset_size=10)
    assert "\n" not in str(info.value)


def test_crest_is_registered_as_a_training_method_that_reads_losses():
    from detreduce.methods import get_method

    spec = get_method("crest")
    assert spec.kind == "training" and POLICIES["crest"] is CrestPolicy
    policy = spec.create()
    assert isinstance(policy, CrestPolicy) and policy.needs_losses
    assert policy.get_params()["fraction"] == 0.5


# ------------------------------------------------------------------ a real run
@pytest.mark.slow
def test_crest_inside_the_ultralytics_trainer(tmp_path):
    """A real run: epoch 0 full, then weighted coresets of half the split; every image
    scored from the per-image loss; images forwarded = what the policy scheduled."""
    from detreduce.data.synthetic import make_synthetic
    from detreduce.train import train_yolo

    data = make_synthetic(tmp_path / "data", n_images=40, imgsz=64, seed=0)
    policy = get_policy("crest", fraction=0.5)
    r = train_yolo(
        data, out_dir=tmp_path / "run", policy=policy, epochs=4, imgsz=64, batch=8,
        device="cpu", seed=0, workers=0, train_args={"nbs": 8},
    )  # fmt: skip
    report = r.policy
    n = r.n_train_images
    forwarded = report["forwarded_per_epoch"]
    assert forwarded[0] == n and all(f == round(0.5 * n) for f in forwarded[1:])
    assert forwarded == report["scheduled_per_epoch"]
    assert report["selection_epochs"][0] == 1 and report["images_scored"] == n
    assert r.images_seen == sum(forwarded) < 4 * n
