"""Per-method tests on small synthetic data: each would fail if the method were wrong."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.cli import main
from detreduce.methods import list_methods
from detreduce.reducers import get_reducer, list_reducers
from detreduce.reducers._fps import farthest_first
from detreduce.reducers._kmeans import kmeans_large
from detreduce.reducers._neighbors import knn, symmetric_graph
from detreduce.reducers._strata import group_quotas, interleave
from detreduce.reducers.facility_location import lazy_greedy
from detreduce.reducers.psa import Moments, regression_betas


def blobs(centres, per, scale=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=np.float64)
    per = np.broadcast_to(per, len(centres))
    labels = np.repeat(np.arange(len(centres)), per)
    X = centres[labels] + rng.normal(scale=scale, size=(len(labels), centres.shape[1]))
    return X.astype(np.float32), labels


def covering_radius(X, kept):
    d = ((X[:, None, :] - X[kept][None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d.min(axis=1)).max())


def mean_nearest(X, kept):
    d = ((X[:, None, :] - X[kept][None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d.min(axis=1)).mean())


# --- shared pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "k", "quotas", "expected"),
    [
        ([30, 20, 10], 25, None, [13, 8, 4]),
        ([50, 1, 1], 3, None, [1, 1, 1]),  # every group keeps one when k >= groups
        ([50, 1, 1], 2, None, [2, 0, 0]),
        ([5, 5], 10, None, [5, 5]),
        ([7, 9, 4], 10, None, [3, 5, 2]),  # remainder tie → the larger group
        ([50, 1, 1], 3, [3, 0, 0], [3, 0, 0]),  # the caller's quotas win
    ],
)
def test_group_quotas_are_proportional_with_one_per_group(sizes, k, quotas, expected):
    q = group_quotas(np.array(sizes), k, quotas)
    assert q.tolist() == expected
    assert q.sum() == k and (q <= np.array(sizes)).all()


def test_interleave_keeps_group_order_and_balance():
    merged = interleave([np.array([1, 2, 3, 4]), np.array([10, 11])])
    assert merged.tolist() == [1, 10, 2, 3, 11, 4]


def test_knn_excludes_self_even_with_duplicates():
    X = np.array([[0, 0], [0, 0], [0, 0], [5, 5]], dtype=np.float32)
    dist, idx = knn(X, 2, np.random.default_rng(0))
    assert (idx != np.arange(4)[:, None]).all()
    assert dist[:3, 0].tolist() == [0.0, 0.0, 0.0]


def test_knn_approximate_path_has_high_recall():
    X, _ = blobs(np.random.default_rng(1).normal(scale=4, size=(20, 16)), 150, scale=1.0)
    rng = np.random.default_rng(0)
    _, exact = knn(X, 10, rng)
    _, approx = knn(X, 10, rng, exact_work=1.0, ann_dims=16, nprobe=8)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.8


def test_faiss_and_sklearn_backends_agree():
    X, _ = blobs(np.eye(3) * 5, 30)
    d1, _ = knn(X, 5, np.random.default_rng(0), backend="faiss")
    d2, _ = knn(X, 5, np.random.default_rng(0), backend="sklearn")
    np.testing.assert_allclose(d1, d2, atol=1e-3)


def test_symmetric_graph_holds_both_directions_sorted():
    dist = np.array([[1.0], [1.0], [2.0]], dtype=np.float32)
    idx = np.array([[1], [0], [0]])
    indptr, indices, w = symmetric_graph(dist, idx)
    row0 = indices[indptr[0] : indptr[1]].tolist()
    assert row0 == [1, 2] and w[indptr[0] : indptr[1]].tolist() == [1.0, 2.0]
    assert indices[indptr[2] : indptr[3]].tolist() == [0]


# --- seed-paper methods ------------------------------------------------------------------


def test_srs_honours_the_seed_and_strata():
    X = np.zeros((100, 2), dtype=np.float32)
    groups = np.repeat([0, 1], [80, 20])
    a = get_reducer("srs").select(X, 0.1, groups=groups, seed=0).indices
    b = get_reducer("srs").select(X, 0.1, groups=groups, seed=1).indices
    assert set(a) != set(b)  # the reference fixed random_state=0
    assert np.bincount(groups[a]).tolist() == [8, 2]


def test_clc_keeps_the_rows_nearest_the_cluster_centres():
    centres = [[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10], [10, 10, 10]]
    X, labels = blobs(centres, 40, scale=1.0)
    kept = get_reducer("clc").select(X, 5, seed=0).indices
    assert sorted(labels[kept].tolist()) == [0, 1, 2, 3, 4]  # one per true cluster
    for i in kept:
        members = np.flatnonzero(labels == labels[i])
        mean = X[members].mean(axis=0)  # k-means converges to the blob means here
        nearest = members[np.argmin(((X[members] - mean) ** 2).sum(1))]
        assert i == nearest


def test_clc_two_level_kmeans_still_one_row_per_cluster():
    X, labels = blobs(np.eye(8) * 20, 25, scale=0.5)
    centroids, lab = kmeans_large(X, 8, np.random.default_rng(0), niter=20, work_limit=500.0)
    assert len(centroids) == 8
    # each true cluster maps to exactly one k-means label
    assert all(len(set(lab[labels == c])) == 1 for c in range(8))


def _naive_fps(X, k, start):
    picks = [start]
    d = np.full(len(X), np.inf)
    for _ in range(k - 1):
        d = np.minimum(d, ((X - X[picks[-1]]) ** 2).sum(1))
        d[picks] = -1
        picks.append(int(np.argmax(d)))
    return picks


def test_mms_first_picks_are_the_extreme_points():
    rng = np.random.default_rng(0)
    corners = np.array([[-10, -10], [-10, 10], [10, -10], [10, 10]], dtype=np.float32)
    X = np.vstack([rng.normal(size=(60, 2)).astype(np.float32), corners])
    for seed in range(4):
        kept = get_reducer("mms").select(X, 5, seed=seed).indices
        assert {60, 61, 62, 63} <= set(kept.tolist())


def test_mms_equals_naive_farthest_point_sampling():
    X, _ = blobs(np.random.default_rng(3).normal(scale=3, size=(4, 5)), 30)
    t = farthest_first(X, 20, np.random.default_rng(0), start=7)
    assert t.order.tolist() == _naive_fps(X.astype(np.float64), 20, 7)
    assert np.all(np.diff(t.radius[1:]) <= 1e-5)  # covering radius never grows


def test_mms_partitioned_coverage_stays_close_to_exact():
    X, _ = blobs(np.random.default_rng(4).normal(scale=8, size=(10, 3)), 60, scale=1.0)
    exact = farthest_first(X, 40, np.random.default_rng(0), start=0)
    parted = farthest_first(X, 40, np.random.default_rng(0), start=0, work_limit=2000.0)
    assert covering_radius(X, parted.order) <= 2.0 * covering_radius(X, exact.order)


def test_kcenter_is_scale_invariant_with_cosine_and_starts_at_the_medoid():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6)).astype(np.float32) + 3
    scaled = X * rng.uniform(0.5, 5, size=(80, 1)).astype(np.float32)
    a = get_reducer("kcenter").select(X, 10, seed=0).indices
    b = get_reducer("kcenter").select(scaled, 10, seed=0).indices
    assert a.tolist() == b.tolist()
    e = get_reducer("kcenter", metric="euclidean").select(X, 3, seed=0).indices
    assert e[0] == np.argmin(((X - X.mean(0)) ** 2).sum(1))


def test_des_prefers_boundary_rows():
    X, labels = blobs([[-3, 0], [3, 0]], 100, scale=1.5)
    res = get_reducer("des", base_fraction=0.2).select(X, 0.3, groups=labels, seed=0)
    kept = res.indices
    rest = np.setdiff1d(np.arange(len(X)), kept)
    # entropy peaks between the two prototypes: the most uncertain rows sit near x = 0
    top = np.argsort(-res.scores)[:10]
    assert np.abs(X[top, 0]).mean() < 0.4 * np.abs(X[:, 0]).mean()
    # the kept rows (a random base + the pool's top entropies) are the central ones
    assert np.median(np.abs(X[kept, 0])) < 0.5 * np.median(np.abs(X[rest, 0]))
    # and the pool picks (after the base, 6 rows per class) are ordered by entropy
    per_class = [kept[labels[kept] == c] for c in (0, 1)]
    for picks in per_class:
        pool = picks[6:]
        assert np.all(np.diff(res.scores[pool]) <= 1e-12)


def test_des_works_at_fraction_0_3_and_without_groups():
    X, _ = blobs([[-3, 0], [3, 0]], 50)
    assert len(get_reducer("des").select(X, 0.3, seed=0).indices) == 30


def test_dom_keeps_isolated_rows_and_covers_better_than_random():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(200, 2)).astype(np.float32)
    outliers = np.array([[30, 30], [-30, 30], [30, -30]], dtype=np.float32)
    X = np.vstack([dense, outliers])
    kept = get_reducer("dom").select(X, 40, seed=0).indices
    assert {200, 201, 202} <= set(kept.tolist())  # nothing else is within ε of them
    dom_r = covering_radius(X[:200], kept[kept < 200])
    rand_r = np.mean(
        [
            covering_radius(X[:200], rng.choice(200, (kept < 200).sum(), replace=False))
            for _ in range(5)
        ]
    )
    assert dom_r < rand_r


def _circle_with_outliers(seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, 150)
    ring = np.c_[np.cos(t), np.sin(t)] * 5 + rng.normal(scale=0.1, size=(150, 2))
    blob = rng.normal(scale=0.3, size=(50, 2)) + [12, 0]
    outliers = np.array([[40, 40], [-40, 40], [40, -40], [-40, -40]])
    return np.vstack([ring, blob, outliers]).astype(np.float32)


def test_phl_representative_and_vital_orders_with_outliers_last():
    X = _circle_with_outliers()
    n = len(X)
    rep = get_reducer("phl", landmark_type="representative").select(X, n, seed=0)
    vit = get_reducer("phl", landmark_type="vital").select(X, n, seed=0)
    outliers = [n - 4, n - 3, n - 2, n - 1]
    for res in (rep, vit):  # super outliers (no neighbour in the ball) come last
        isolated = np.isnan(res.scores)
        assert isolated[outliers].all()
        assert isolated[res.indices[-int(isolated.sum()) :]].all()
    s = rep.scores
    scored = [i for i in rep.indices.tolist() if not np.isnan(s[i])]
    assert np.all(np.diff(s[scored]) >= 0)  # representative: low scores first
    scored_v = [i for i in vit.indices.tolist() if not np.isnan(s[i])]
    assert np.all(np.diff(s[scored_v]) <= 0)  # vital: high scores first
    assert (~np.isnan(s)).sum() > n // 2  # the radius is not degenerate (the int cast bug)


def test_nrmd_matches_the_reference_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32) + 1
    res = get_reducer("nrmd", rank=6).select(X, 40, seed=0)
    # reference: SR_MD(X.T).find_scores_and_sort("SVD_python")
    U, lam, _ = np.linalg.svd(X.T.astype(np.float64), full_matrices=False)
    w = (1 / lam) / (1 / lam).sum()
    Xn = X.T / np.linalg.norm(X.T, axis=0)
    A = np.maximum(np.abs(Xn.T @ U), 0.001)
    ref = (-np.log(A)) @ w
    np.testing.assert_allclose(res.scores, ref, rtol=1e-4)
    assert res.indices.tolist() == np.argsort(-ref, kind="stable").tolist()


def test_psa_moments_and_regressions_are_exact():
    rng = np.random.default_rng(0)
    Z, Y, w = rng.normal(size=(30, 4)), rng.normal(size=(5, 4)), rng.uniform(size=30)
    brute = np.array([(w * ((y - Z) ** 2).sum(1)).sum() for y in Y])
    np.testing.assert_allclose(Moments(Z, w).scatter(Y), brute, rtol=1e-10)
    betas = regression_betas(Z, 1e-4)
    A = np.hstack([np.ones((30, 1)), np.delete(Z, 2, axis=1)])
    ref = np.linalg.solve(A.T @ A + 1e-4 * np.eye(4), A.T @ Z[:, 2])
    np.testing.assert_allclose(betas[2], ref, atol=1e-10)


def test_psa_ranks_rows_far_from_the_other_class_first():
    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(0, 10, 120), rng.normal(scale=0.5, size=120)]
    b = np.c_[rng.normal(25, 0.5, 60), rng.normal(scale=0.5, size=60)]
    X = np.vstack([a, b]).astype(np.float32) + [0, 5]
    groups = np.repeat([0, 1], [120, 60])
    kept = get_reducer("psa", n_components=2).select(X, 0.25, groups=groups, seed=0).indices
    kept_a = kept[groups[kept] == 0]
    rest_a = np.setdiff1d(np.arange(120), kept_a)
    assert X[kept_a, 0].mean() < X[rest_a, 0].mean()


def test_prd_picks_a_prototype_of_each_mode_with_nonnegative_weights():
    X, labels = blobs([[0, 0], [8, 8], [-8, 8]], [120, 60, 30], scale=1.0)
    res = get_reducer("prd").select(X, 3, seed=0)
    assert sorted(labels[res.indices].tolist()) == [0, 1, 2]
    w = res.scores[res.indices]
    assert (w > 0).all()
    assert w[labels[res.indices] == 0][0] == w.max()  # the biggest mode weighs most
    assert (res.scores[np.setdiff1d(np.arange(len(X)), res.indices)] == 0).all()


def test_prd_nystrom_path_handles_more_rows_than_rank():
    X, labels = blobs([[0, 0], [8, 8]], 300, scale=1.0)
    res = get_reducer("prd", rank=50, max_steps=5).select(X, 20, seed=0)
    assert set(labels[res.indices]) == {0, 1}


def test_fes_keeps_never_learned_rows_first():
    X, labels = blobs([[-4, 0], [4, 0]], 60, scale=1.0)
    noisy = np.array([0, 1, 2, 3, 4])
    X[noisy] += np.array([8, 0], dtype=np.float32)  # class-0 rows inside class 1: never learned
    res = get_reducer("fes", epochs=8, lr=0.05).select(X, 10, groups=labels, seed=0)
    kept0 = res.indices[labels[res.indices] == 0]
    assert set(kept0.tolist()) == set(noisy.tolist())
    assert (res.scores[noisy] == 8).all()  # never learned = the number of epochs


def test_fes_accepts_given_counts_and_losses():
    X = np.zeros((6, 2), dtype=np.float32)
    counts = [0, 5, 1, 3, 0, 2]
    kept = get_reducer("fes", forget_counts=counts).select(X, 3, seed=0).indices
    assert kept.tolist() == [1, 3, 5]
    losses = np.array(
        [[1, 2, 1, 2], [1, 1, 1, 1], [3, 2, 1, 0], [1, 2, 3, 4], [5, 5, 5, 5], [0, 0, 0, 0]]
    )
    kept = get_reducer("fes", losses=losses).select(X, 2, seed=0).indices
    assert kept.tolist() == [3, 0]  # 3 increases, then 2 increases
    assert "array" in get_reducer("fes", losses=losses).get_params()["losses"]


# --- methods from the wider field ---------------------------------------------------------


def test_herding_matches_the_mean_better_than_random():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32) * rng.uniform(0.5, 3, 8).astype(np.float32)
    kept = get_reducer("herding", normalize=False).select(X, 15, seed=0).indices
    err = np.linalg.norm(X[kept].mean(0) - X.mean(0))
    rand = np.mean(
        [np.linalg.norm(X[rng.choice(300, 15, False)].mean(0) - X.mean(0)) for _ in range(20)]
    )
    assert err < 0.3 * rand
    for t in (1, 2, 3):  # greedy: each prefix adds the best row for the mean
        prefix = kept[: t - 1].tolist()
        errs = [
            np.linalg.norm(X[prefix + [i]].mean(0) - X.mean(0)) if i not in prefix else np.inf
            for i in range(300)
        ]
        assert kept[t - 1] == int(np.argmin(errs))


def _naive_facility_location(S, k):
    chosen, cover = [], np.zeros(len(S))
    for _ in range(k):
        gains = [
            np.maximum(S[:, j] - cover, 0).sum() if j not in chosen else -1 for j in range(len(S))
        ]
        j = int(np.argmax(gains))
        chosen.append(j)
        cover = np.maximum(cover, S[:, j])
    return chosen


def test_facility_location_lazy_greedy_equals_naive_and_beats_random():
    X, _ = blobs(np.random.default_rng(2).normal(scale=4, size=(5, 3)), 20)
    n = len(X)
    dist, idx = knn(X, n - 1, np.random.default_rng(0))
    indptr, indices, w = symmetric_graph(dist, idx)
    sigma = float(np.median(dist))
    sim = np.exp(-(w.astype(np.float64) ** 2) / (2 * sigma**2))
    picks, _ = lazy_greedy(indptr, indices, sim, 8)
    S = np.eye(n)
    for i in range(n):
        S[i, indices[indptr[i] : indptr[i + 1]]] = sim[indptr[i] : indptr[i + 1]]
    assert picks.tolist() == _naive_facility_location(S, 8)
    kept = get_reducer("facility_location").select(X, 8, seed=0).indices
    rng = np.random.default_rng(0)
    rand = np.mean([mean_nearest(X, rng.choice(n, 8, replace=False)) for _ in range(10)])
    assert mean_nearest(X, kept) < rand


def test_kmeanspp_never_picks_a_duplicate_of_a_kept_row_while_others_remain():
    X = np.zeros((52, 2), dtype=np.float32)
    X[50], X[51] = [5, 0], [0, 5]
    for seed in range(5):
        kept = get_reducer("kmeanspp").select(X, 3, seed=seed).indices
        assert {tuple(r) for r in X[kept].tolist()} == {(0, 0), (5, 0), (0, 5)}


def test_dedup_drops_the_later_of_each_near_duplicate_pair():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 16)).astype(np.float32)
    dups = base[:10] + rng.normal(scale=1e-3, size=(10, 16)).astype(np.float32)
    X = np.vstack([base, dups])
    kept = get_reducer("dedup").select(X, 30, seed=0).indices
    assert sorted(kept.tolist()) == list(range(30))
    kept = get_reducer("dedup").select(X, 33, seed=0).indices
    assert set(range(30)) <= set(kept.tolist())  # uniques first, then the fill
    kept = get_reducer("dedup", metric="euclidean", threshold=0.1).select(X, 30, seed=0).indices
    assert sorted(kept.tolist()) == list(range(30))


def test_typicality_keeps_dense_rows_of_distinct_clusters_not_outliers():
    X, labels = blobs([[0, 0], [10, 0], [0, 10]], 50, scale=1.0)
    X = np.vstack([X, [[5, 5], [30, 30]]]).astype(np.float32)
    kept = get_reducer("typicality").select(X, 3, seed=0).indices
    assert sorted(labels[kept].tolist()) == [0, 1, 2]
    res = get_reducer("typicality").select(X, 3, seed=0)
    for i in kept:
        members = np.flatnonzero(labels == labels[i])
        assert res.scores[i] >= np.quantile(res.scores[members], 0.8)


# --- the `detreduce methods` listing --------------------------------------------------------


def test_catalog_lists_every_reducer_with_defaults():
    infos = {m.name: m for m in list_methods(kind="embedding")}
    assert set(infos) == {s.name for s in list_reducers()}
    assert infos["phl"].params["landmark_type"] == "representative"
    assert [m.name for m in list_methods("k*")] == ["clc", "kcenter", "kmeanspp"]


def test_methods_command_prints_names_and_parameters(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("srs", "phl", "facility_location", "typicality", "random"):
        assert name in out
    assert "landmark_type" in out
