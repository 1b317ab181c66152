"""el2n: selection on per-image YOLO losses (Paul et al. 2021), and per-row parameters
sliced with the rows under balance (el2n, fes)."""

from __future__ import annotations

import numpy as np
import pytest

from detreduce.errors import ConfigError
from detreduce.reducers import get_reducer


def test_hard_keeps_the_highest_mean_losses_easy_the_lowest_mix_half_each():
    losses = np.random.default_rng(0).gamma(2.0, size=(50, 3))
    mean = losses.mean(axis=1)
    X = np.zeros((50, 1))
    hard = get_reducer("el2n", losses=losses).select(X, 10, seed=0).indices
    easy = get_reducer("el2n", keep="easy", losses=losses).select(X, 10, seed=0).indices
    mix = get_reducer("el2n", keep="mix", losses=losses).select(X, 10, seed=0).indices
    order = np.argsort(-mean)
    assert set(hard) == set(order[:10]) and set(easy) == set(order[-10:])
    assert set(order[:5]) <= set(mix) and len(set(mix) - set(order[:5])) == 5
    assert get_reducer("el2n", losses=mean).select(X, 10, seed=0).indices.tolist() == hard.tolist()


def test_without_losses_or_with_misaligned_ones_it_says_how_to_get_them():
    with pytest.raises(
        ConfigError, match="needs per-image YOLO losses: run it in `detreduce sweep`"
    ):
        get_reducer("el2n").select(np.zeros((5, 1)), 2)
    with pytest.raises(ConfigError, match=r"one row per row of X \(5\)"):
        get_reducer("el2n", losses=np.ones(4)).select(np.zeros((5, 1)), 2)
    with pytest.raises(ConfigError, match="keep"):
        get_reducer("el2n", keep="hardest", losses=np.ones(5)).select(np.zeros((5, 1)), 2)


@pytest.mark.parametrize("method", ["el2n", "fes"])
def test_balance_slices_the_losses_with_the_rows_of_each_stratum(tmp_path, method):
    """Under class balance every stratum keeps its own highest-loss images: the losses
    travel with the rows (reserve-one-per-class, per-stratum and joint calls alike)."""
    from detreduce.balance import balanced_select
    from detreduce.data.load import load_dataset
    from detreduce.data.synthetic import make_synthetic

    ds = load_dataset(make_synthetic(tmp_path, n_images=60, imgsz=64, seed=0)).split("train")
    n = ds.num_images
    losses = np.random.default_rng(1).permutation(n).astype(float)  # distinct scores
    reducer = get_reducer(method, losses=losses)
    X = np.random.default_rng(2).normal(size=(n, 4))  # fes reads embeddings (ignored here)
    sel = balanced_select(ds, reducer, 0.5, X=X, balance="classes", keep_every_class=False)
    assert len(sel.indices) == round(0.5 * n)
    for stratum in np.unique(sel.strata):
        rows = np.flatnonzero(sel.strata == stratum)
        kept = np.intersect1d(rows, sel.indices)
        top = rows[np.argsort(-losses[rows])][: len(kept)]
        assert set(kept) == set(top), stratum
