"""The distribution-learning methods: vq (codebook shares), flow (learned density) and
dream (representative matching). The generic contract (exact budget, determinism, real
rows, bad parameters) runs in test_reducers_contract.py; these check what each method
claims to do, on data where the claim is false for the methods it should differ from."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.reducers import get_reducer
from detreduce.reducers.vq import tempered_quotas


def _dense_and_sparse(n_dense=1800, n_sparse=200, d=8, seed=0):
    """A tight Gaussian (std 0.3) inside a broad one (std 3): the broad rows are rare."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 0.3, (n_dense, d)), rng.normal(0, 3, (n_sparse, d))])
    return X.astype(np.float32), np.r_[np.zeros(n_dense, bool), np.ones(n_sparse, bool)]


def _three_modes(sizes=(900, 90, 10), d=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(d)[: len(sizes)] * 50
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return (centres[labels] + rng.normal(size=(len(labels), d))).astype(np.float32), labels


# --- vq ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "k", "temperature", "expected"),
    [
        ([900, 90, 10], 100, 1.0, [90, 9, 1]),  # proportional
        ([900, 90, 10], 30, 0.0, [10, 10, 10]),  # equal per code
        ([900, 90, 10], 90, 0.0, [40, 40, 10]),  # the rare code is capped, its surplus shared
        ([4, 0, 4], 3, 1.0, [2, 0, 1]),  # empty code gets nothing; tie to the lower index
        ([5, 5], 10, 0.5, [5, 5]),  # everything
    ],
)
def test_tempered_quotas_fill_the_budget_under_caps(population, k, temperature, expected):
    quota = tempered_quotas(np.array(population), k, temperature)
    assert quota.tolist() == expected
    assert quota.sum() == k and (quota <= np.array(population)).all()


def test_tempered_quotas_at_half_temperature_sit_between_proportional_and_equal():
    quota = tempered_quotas(np.array([900, 90, 10]), 100, 0.5)
    # weights sqrt(900) : sqrt(90) : sqrt(10) = 30 : 9.49 : 3.16 -> shares 70.3, 22.2, 7.4
    assert quota.tolist() == [70, 22, 8]  # 70.3, 22.2, 7.4: the 0.41 remainder wins


def test_vq_gives_rare_codes_more_than_their_share_and_keeps_code_cores():
    X, mode = _three_modes()
    result = get_reducer("vq", codes=3, temperature=0.5).select(X, 100, seed=0)
    kept = np.bincount(mode[result.indices], minlength=3)
    assert kept.tolist() == [70, 22, 8]  # random would keep about 90 : 9 : 1
    proportional = get_reducer("vq", codes=3, temperature=1.0).select(X, 100, seed=0)
    assert np.bincount(mode[proportional.indices], minlength=3).tolist() == [90, 9, 1]
    # within a code the rows nearest its code vector come first: every kept row of the big
    # mode is nearer the code vector than every dropped one
    dist = result.scores
    big = mode == 0
    kept_big = np.zeros(len(X), bool)
    kept_big[result.indices] = True
    assert dist[big & kept_big].max() <= dist[big & ~kept_big].min()


def test_vq_auto_codebook_is_sqrt_n_but_never_more_than_the_quota():
    vq = get_reducer("vq")
    assert vq.n_codes(10_000, 5_000) == 100
    assert vq.n_codes(10_000, 20) == 20
    assert get_reducer("vq", codes=7).n_codes(100, 50) == 7


# --- flow -------------------------------------------------------------------------------


def test_flow_density_ranks_the_tight_mode_denser_and_thins_it():
    X, sparse = _dense_and_sparse()
    result = get_reducer("flow").select(X, 0.25, seed=0)
    logp = result.scores
    # the learned density separates the modes: every tight row denser than the median
    # broad row
    assert np.median(logp[sparse]) < logp[~sparse].min()
    kept_sparse = sparse[result.indices].mean()
    assert kept_sparse > 0.3  # 10 % of the data, over 30 % of what is kept
    uniform = get_reducer("flow", temperature=0.0).select(X, 0.25, seed=0)
    assert abs(sparse[uniform.indices].mean() - 0.1) < 0.04  # τ = 0: uniform random
    # the dense region is thinned, not dropped: it still keeps images
    assert (~sparse[result.indices]).sum() >= 0.25 * len(X) - sparse.sum()


def test_flow_floor_stops_extreme_outliers_from_outranking_the_sparse_tail():
    X, _ = _dense_and_sparse(n_dense=900, n_sparse=100)
    far = 30.0 * np.eye(X.shape[1], dtype=np.float32)[:3]  # three odd rows, ten sigma out
    X = np.vstack([X, far])
    no_floor = get_reducer("flow", floor_quantile=0.0, temperature=5.0).select(X, 3, seed=1)
    lowest = set(np.argsort(no_floor.scores)[:3].tolist())
    assert len(lowest & {1000, 1001, 1002}) >= 2  # the flow sees the odd rows as rare
    # with a high temperature and no floor the three lowest densities are kept
    assert set(no_floor.indices.tolist()) == lowest
    # floored at the 20 % quantile the extremes tie with the sparse tail: a seeded draw
    # among those ~200 rows, not the three most extreme
    floored = get_reducer("flow", floor_quantile=0.2, temperature=5.0).select(X, 3, seed=1)
    tail = floored.scores <= np.quantile(floored.scores, 0.2)
    assert tail[floored.indices].all()
    assert set(floored.indices.tolist()) != set(np.argsort(floored.scores)[:3].tolist())


def test_flow_keeps_quotas_per_stratum_with_one_fit():
    X, sparse = _dense_and_sparse(n_dense=600, n_sparse=60)
    groups = np.arange(len(X)) % 3
    result = get_reducer("flow").select(X, 0.3, groups=groups, seed=2)
    assert np.bincount(groups[result.indices]).tolist() == [66, 66, 66]


# --- dream ------------------------------------------------------------------------------


def test_dream_rounds_keep_sub_cluster_centres_not_random_rows():
    X, labels = _three_modes(sizes=(400, 400, 400), d=16)
    result = get_reducer("dream", n_subclusters=8, pool_factor=8).select(X, 0.1, seed=0)
    rounds = result.scores[result.indices]
    assert rounds.min() == 0 and np.all(np.diff(rounds) >= 0)  # in round order
    assert int(rounds.max()) == 120 // 8 - 1  # quota 120, 8 sub-clusters a round
    centre = np.stack([X[labels == c].mean(axis=0) for c in range(3)])
    spread = np.linalg.norm(X - centre[labels], axis=1)
    rand = get_reducer("random").select(X, 0.1, seed=0).indices
    # representatives are typical members: nearer their mode's centre than random picks
    assert spread[result.indices].mean() < 0.9 * spread[rand].mean()


def test_dream_with_pool_factor_one_is_uniform_random_and_never_repeats_a_row():
    X, sparse = _dense_and_sparse()
    result = get_reducer("dream", n_subclusters=50, pool_factor=1).select(X, 0.25, seed=0)
    assert abs(sparse[result.indices].mean() - 0.1) < 0.04
    representative = get_reducer("dream").select(X, 0.25, seed=0)
    assert sparse[representative.indices].mean() > 0.25  # sparse rows head sub-clusters
    assert len(set(representative.indices.tolist())) == len(representative.indices)
