"""Contract tests run over EVERY registered reducer (as scikit-learn's estimator checks).

A new reducer inherits them by registering: same seed → same selection, exact budget,
unique real rows, X never mutated, bad parameters raise ConfigError, groups honoured.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from detreduce.errors import ConfigError
from detreduce.quotas import allocate
from detreduce.reducers import get_reducer, list_reducers

ALL = [spec.name for spec in list_reducers()]
#: Reducers that ignore ``groups`` by design (``random`` is uniform; ``srs`` is its
#: stratified twin).
GROUP_BLIND = {"random"}
GROUPED = [n for n in ALL if n not in GROUP_BLIND]

#: One or more bad values per parameterised method: each must raise ConfigError at select.
def _reducer(name: str, X):
    """The reducer, with the per-row YOLO losses a loss-based one needs (a sweep's proxy
    run supplies real ones; the contract only needs one value per row)."""
    from detreduce.methods import get_method

    if get_method(name).uses_losses and name == "el2n":
        X = np.asarray(X, dtype=np.float64)
        return get_reducer(name, losses=np.abs(X).sum(axis=1) + np.arange(len(X)) * 1e-9)
    return get_reducer(name)


BAD_PARAMS: dict[str, list[dict]] = {
    "clc": [{"niter": 0}, {"work_limit": -1.0}],
    "mms": [{"work_limit": 0}],
    "kcenter": [{"metric": "manhattan"}, {"start": "first"}],
    "des": [{"base_fraction": 0.0}, {"base_fraction": 1.5}, {"temperature": -1.0}],
    "dom": [{"n_neighbors": 0}, {"n_neighbors": "many"}],
    "phl": [{"landmark_type": "typical"}, {"dimension": 5}, {"radius": -1.0}],
    "nrmd": [{"rank": 0}],
    "psa": [{"n_components": 0}, {"group_size": 1}],
    "prd": [{"sigma": 0.0}, {"rank": 0}, {"max_steps": "x"}],
    "fes": [{"epochs": 0}, {"forget_counts": [1, 2, 3]}, {"losses": np.ones((2, 3, 4))}],
    "herding": [{"normalize": "yes"}],
    "facility_location": [{"n_neighbors": 0}, {"sigma": -2.0}],
    "kmeanspp": [{"work_limit": -5}],
    "dedup": [{"threshold": -0.1}, {"metric": "hamming"}],
    "typicality": [{"n_neighbors": 0}, {"niter": 0}],
    "vq": [{"codes": 0}, {"codes": "many"}, {"temperature": 1.5}, {"niter": 0}],
    "dream": [{"n_subclusters": 0}, {"pool_factor": 0}, {"niter": "x"}],
    "flow": [
        {"architecture": "realnvp"},
        {"n_components": 0},
        {"epochs": 0},
        {"val_fraction": 1.0},
        {"temperature": -0.5},
        {"floor_quantile": 2.0},
        {"device": "tpu"},
    ],
    "el2n": [{"keep": "hardest"}, {"losses": [1.0, 2.0]}, {"losses": np.ones((2, 3, 4))}],
}


def _blobs(n: int = 60, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(3, d))
    groups = np.repeat([0, 1, 2], [n // 2, n // 3, n - n // 2 - n // 3])
    X = centres[groups] + rng.normal(size=(n, d))
    return X.astype(np.float32), groups


def _has_params(name: str) -> bool:
    sig = inspect.signature(get_reducer(name).__class__.__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(p.name != "self" and p.kind in kinds for p in sig.parameters.values())


@pytest.fixture(scope="module")
def data():
    return _blobs()


def test_every_parameterised_reducer_has_bad_values_listed():
    missing = [n for n in ALL if _has_params(n) and n not in BAD_PARAMS]
    assert not missing, f"add bad parameter values for {missing} to BAD_PARAMS"


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_selection(name, data):
    X, groups = data
    a = _reducer(name, X).select(X, 0.3, seed=7)
    b = _reducer(name, X).select(X, 0.3, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    g1 = _reducer(name, X).select(X, 0.3, groups=groups, seed=3)
    g2 = _reducer(name, X).select(X, 0.3, groups=groups, seed=3)
    np.testing.assert_array_equal(g1.indices, g2.indices)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("budget", [1, 0.1, 0.5, 59, 1.0])
def test_exact_budget_of_unique_real_rows(name, budget, data):
    X, _ = data
    res = _reducer(name, X).select(X, budget, seed=1)
    k = budget if isinstance(budget, int) else int(round(budget * len(X)))
    assert len(res.indices) == k
    assert len(np.unique(res.indices)) == k
    assert res.indices.min() >= 0 and res.indices.max() < len(X)
    assert res.indices.dtype == np.int64
    if res.scores is not None:
        assert res.scores.shape == (len(X),)


@pytest.mark.parametrize("name", ALL)
def test_x_is_never_mutated(name, data):
    X, groups = data
    for arr in (X.copy(), X.astype(np.float64), np.asfortranarray(X)):
        before = arr.copy()
        _reducer(name, arr).select(arr, 0.5, groups=groups, seed=0)
        _reducer(name, arr).select(arr, 0.5, seed=0)
        np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_raises_config_error(name):
    with pytest.raises(ConfigError, match=name):
        get_reducer(name, not_a_parameter=1)


@pytest.mark.parametrize(
    ("name", "params"), [(n, p) for n, ps in BAD_PARAMS.items() for p in ps], ids=str
)
def test_bad_parameter_value_raises_config_error(name, params, data):
    X, _ = data
    reducer = get_reducer(name, **params)
    with pytest.raises(ConfigError, match=list(params)[0]):
        reducer.select(X, 0.5, seed=0)


@pytest.mark.parametrize("name", GROUPED)
def test_groups_get_proportional_quotas(name, data):
    X, groups = data
    k = 25
    res = _reducer(name, X).select(X, k, groups=groups, seed=2)
    counts = np.bincount(groups[res.indices], minlength=3)
    expected = allocate(np.bincount(groups), k, lower=np.ones(3, dtype=np.int64))
    np.testing.assert_array_equal(counts, expected)
    # the order interleaves strata: every prefix is within one row of proportional
    onehot = np.eye(3)[groups[res.indices]]
    prefix = np.cumsum(onehot, axis=0)
    ideal = np.arange(1, k + 1)[:, None] * expected[None, :] / k
    assert np.abs(prefix - ideal).max() <= 1.0


@pytest.mark.parametrize("name", GROUPED)
def test_string_groups_and_tiny_strata(name):
    X, _ = _blobs(n=12, d=3, seed=4)
    groups = np.array(["a"] * 9 + ["b"] * 2 + ["c"])
    res = _reducer(name, X).select(X, 6, groups=groups, seed=0)
    assert len(set(res.indices.tolist())) == 6
    assert set(groups[res.indices]) == {"a", "b", "c"}  # every stratum keeps a row


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("n", "k"), [(1, 1), (2, 1), (3, 2), (5, 5)])
def test_tiny_inputs(name, n, k):
    X, _ = _blobs(n=max(n, 3), d=2, seed=5)
    res = _reducer(name, X[:n]).select(X[:n], k, seed=0)
    assert sorted(res.indices.tolist()) == sorted(set(res.indices.tolist()))
    assert len(res.indices) == k


@pytest.mark.parametrize("name", ALL)
def test_duplicate_rows_still_give_unique_indices(name):
    X = np.zeros((20, 4), dtype=np.float32)
    X[:5] = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]] * 3
    res = _reducer(name, X).select(X, 12, seed=0)
    assert len(np.unique(res.indices)) == 12


@pytest.mark.parametrize("name", ALL)
def test_features_free_input(name):
    """balance.py passes an (n, 1) zero matrix to methods that ignore features."""
    X = np.zeros((15, 1), dtype=np.float32)
    res = _reducer(name, X).select(X, 4, seed=0)
    assert len(np.unique(res.indices)) == 4
