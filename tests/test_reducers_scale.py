"""What makes kcenter, clc and facility_location scale to a million rows (issue 13 item 4),
checked at small sizes: the two-level partitioning, the leaner kNN graph, the faiss GPU
route (with a stand-in for the GPU), each against a plain reference."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from detreduce.reducers import _kmeans, _neighbors, _partition, get_reducer
from detreduce.reducers._neighbors import knn, nearest, symmetric_graph
from detreduce.reducers.facility_location import gaussian_similarity


def blobs(n_blobs, per, d=3, spread=20.0, scale=0.1, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(n_blobs, d))
    labels = np.repeat(np.arange(n_blobs), per)
    X = centres[labels] + rng.normal(scale=scale, size=(len(labels), d))
    return X.astype(np.float32), labels


# --- the symmetrised kNN graph ----------------------------------------------------------


def _naive_graph(dist, idx):
    """Own edges first, then reversed ones; the first copy of (src, dst) wins; each row
    sorted by (distance, neighbour)."""
    n, k = idx.shape
    edges: dict[tuple[int, int], float] = {}
    for i in range(n):
        for c in range(k):
            edges.setdefault((i, int(idx[i, c])), float(dist[i, c]))
    for i in range(n):
        for c in range(k):
            edges.setdefault((int(idx[i, c]), i), float(dist[i, c]))
    rows = [sorted((w, j) for (s, j), w in edges.items() if s == i) for i in range(n)]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = [j for r in rows for _, j in r]
    weights = [w for r in rows for w, _ in r]
    return indptr, np.array(indices, dtype=np.int64), np.array(weights, dtype=np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_symmetric_graph_equals_a_naive_construction(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(5, 60)), int(rng.integers(1, 4))
    if seed % 2:  # a grid of integers: many equal distances, duplicate rows
        X = rng.integers(0, 3, size=(n, d)).astype(np.float32)
    else:
        X = rng.normal(size=(n, d)).astype(np.float32)
    dist, idx = knn(X, int(rng.integers(1, n)), rng)
    got = symmetric_graph(dist, idx)
    want = _naive_graph(dist, idx)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert got[1].dtype == np.int64 and got[2].dtype == np.float32


def test_gaussian_similarity_is_the_formula_bit_for_bit():
    w = (np.random.default_rng(0).random(1000) * 5).astype(np.float32)
    for sigma in (0.3, 1.0, 2.7):
        want = np.exp(-(w.astype(np.float64) ** 2) / (2 * sigma**2))
        assert np.array_equal(gaussian_similarity(w, sigma), want)


# --- partitions -------------------------------------------------------------------------


def _check_partition(parts, n):
    rows = np.concatenate(parts)
    assert sorted(rows.tolist()) == list(range(n))  # every row exactly once
    assert all(len(p) and np.all(np.diff(p) > 0) for p in parts)  # non-empty, ascending


def test_partition_up_to_the_flat_limit_is_one_kmeans():
    X, _ = blobs(12, 30, d=4, spread=5.0, scale=1.0)
    parts = _partition.partition_rows(X, 10, np.random.default_rng(0))
    _, labels = _kmeans.kmeans(X, 10, np.random.default_rng(0), niter=10, sample_per_centroid=32)
    assert [p.tolist() for p in parts] == [p.tolist() for p in _partition._groups(labels)]


def test_partition_above_the_flat_limit_is_two_level_and_keeps_clusters_whole(monkeypatch):
    monkeypatch.setattr(_partition, "MAX_FLAT_PARTITIONS", 4)
    calls = []
    real_nearest = _partition.nearest
    monkeypatch.setattr(
        _partition, "nearest", lambda Z, C: calls.append(len(C)) or real_nearest(Z, C)
    )
    X, labels = blobs(16, 50)
    parts = _partition.partition_rows(X, 16, np.random.default_rng(0))
    assert calls == [16]  # the two-level path ran, with its global refinement
    _check_partition(parts, len(X))
    assert len(parts) == 16
    assert sorted(len(set(labels[p])) for p in parts) == [1] * 16  # each partition one blob


def test_refine_moves_rows_cut_off_by_a_coarse_border_to_their_cluster():
    X, labels = blobs(3, 20, seed=1)
    parts = [np.flatnonzero(labels == c) for c in range(3)]
    stray = parts[0][:2]  # two rows of blob 0 put in blob 1's partition
    parts = [parts[0][2:], np.sort(np.concatenate([parts[1], stray])), parts[2]]
    fixed = _partition._refine(X, parts)
    assert [p.tolist() for p in fixed] == [np.flatnonzero(labels == c).tolist() for c in range(3)]


def test_clc_through_two_level_partitions_keeps_one_row_per_cluster(monkeypatch):
    monkeypatch.setattr(_partition, "MAX_FLAT_PARTITIONS", 4)
    X, labels = blobs(16, 80)
    reducer = get_reducer("clc", work_limit=1e3)  # m = 16 partitions, one centroid each
    kept = reducer.select(X, 16, seed=0).indices
    assert sorted(labels[kept].tolist()) == list(range(16))


def test_nearest_is_the_exact_nearest_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    C = rng.normal(size=(17, 5)).astype(np.float32)
    d2 = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(-1)
    assert nearest(X, C).tolist() == d2.argmin(axis=1).tolist()


# --- the faiss GPU route, with a stand-in GPU -------------------------------------------


@pytest.fixture
def fake_gpu(monkeypatch):
    """faiss reports one GPU; 'copying' an index to it records the index type and
    returns the CPU index, so the route runs without a GPU."""
    moved: list[str] = []

    def to_gpu(res, device, index):
        assert isinstance(res, FakeResources) and device == 0
        moved.append(type(index).__name__)
        return index

    class FakeResources:
        pass

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", FakeResources, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    monkeypatch.setattr(_neighbors, "_gpu_resources", None)
    return moved


def test_knn_and_nearest_search_on_the_gpu_when_faiss_sees_one(fake_gpu, monkeypatch):
    X, _ = blobs(5, 40, d=8)
    monkeypatch.setattr(_neighbors, "USE_GPU", False)
    cpu = [
        knn(X, 6, np.random.default_rng(0)),
        knn(X, 6, np.random.default_rng(0), exact_work=0.0, ann_dims=4),
    ]
    assert fake_gpu == []
    monkeypatch.setattr(_neighbors, "USE_GPU", True)
    gpu = [
        knn(X, 6, np.random.default_rng(0)),
        knn(X, 6, np.random.default_rng(0), exact_work=0.0, ann_dims=4),
    ]
    assert fake_gpu == ["IndexFlatL2", "IndexIVFFlat"]
    assert nearest(X, X[:5]).tolist() == nearest(X, X[:5]).tolist()
    assert fake_gpu[2:] == ["IndexFlatL2", "IndexFlatL2"]
    # the stand-in GPU is the CPU index, so the results are the CPU path's
    for (d_cpu, i_cpu), (d_gpu, i_gpu) in zip(cpu, gpu, strict=True):
        assert np.array_equal(i_cpu, i_gpu) and np.array_equal(d_cpu, d_gpu)


def test_gpu_route_is_skipped_for_large_k_when_disabled_or_without_gpu(fake_gpu, monkeypatch):
    X, _ = blobs(3, 10)
    monkeypatch.setattr(_neighbors, "GPU_MAX_K", 3)
    knn(X, 4, np.random.default_rng(0))  # k + 1 = 5 results > GPU_MAX_K
    assert fake_gpu == []
    monkeypatch.setattr(_neighbors, "GPU_MAX_K", 2048)
    monkeypatch.setattr(_neighbors, "USE_GPU", False)
    knn(X, 4, np.random.default_rng(0))
    assert fake_gpu == []
    monkeypatch.setattr(_neighbors, "USE_GPU", True)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)
    knn(X, 4, np.random.default_rng(0))
    nearest(X, X[:2])
    assert fake_gpu == []
