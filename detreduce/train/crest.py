"""CREST for YOLO: weighted mini-batch coresets from random subsets, re-selected on drift.

Yang, Xie, Mirzasoleiman et al., "Towards Sustainable Learning: Coresets for
Data-efficient Deep Learning", ICML 2023 (reference code: github.com/bigml-cs-ucla/crest,
``trainers/crest_trainer.py``, ``datasets/subset.py``). CREST trains on weighted coresets
that it keeps only while they stay valid: it draws random subsets of the training set,
selects from each, by greedy facility location on per-example gradient proxies, a
weighted mini-batch coreset (each selected example weighs as many examples of its
subset as it is the nearest selected one to, as in CRAIG, Mirzasoleiman et al., ICML
2020), trains on the union, and selects anew when the loss on the random subsets drifts
past a threshold ``tau`` from the quadratic (Taylor) model fitted at selection time.

What this policy does, per epoch (the trainer's unit: its sampler draws an epoch's order
once, when the epoch starts; :mod:`detreduce.train.trainer`):

- **Warm-up.** The first ``warmup_epochs`` epochs (and any epoch in which no image has
  a loss yet) forward every image with weight 1, so every image gets a loss, hence a
  proxy.
- **Proxy.** At the start of every epoch the policy snapshots each image's latest loss
  (box + cls + DFL, :mod:`detreduce.train.loss`). An image's proxy is the vector of its
  last ``history`` snapshots, each column standardized over the images being selected
  from. Why it stands in for a gradient: to first order the change of image ``i``'s
  loss between two snapshots is ``g_i . dtheta``, the projection of its gradient on the
  parameter change of that epoch, so the vector is a sketch of ``g_i`` on the recent
  update directions, and its level follows the gradient's magnitude (for YOLO's BCE and
  IoU terms as for cross-entropy, a larger loss means a larger gradient). Images with
  similar loss trajectories are taken to have similar gradients.
- **Selection.** The images still in the pool (not dropped) that have a loss are split
  into disjoint random subsets of at most ``subset_size`` images (``n_subsets`` of them,
  or by default as many as cover the pool). The epoch's budget ``K = round(fraction * n)``
  is shared among the subsets in proportion to their sizes; from each, greedy facility
  location on the similarity ``s_ij = max(d) - d_ij`` (``d`` the Euclidean distance of
  proxies, CRAIG's construction: maximizing it minimizes the sum of distances of the
  subset's images to their nearest selected one, the bound on the gradient error)
  picks its share. Each selected image's weight is the number of subset images whose
  nearest selected image it is (itself included, so at least 1; the weights of a
  subset's coreset sum to the subset's size), and the epoch's weights are scaled to
  average 1 over the coreset images, as CREST normalizes them (``weights / sum *
  len(subset)``). The epoch forwards the union of the coresets, each image once, with
  its weight through :meth:`CrestPolicy.loss_weights`.
- **Re-selection.** Until re-selection every epoch forwards the same coreset with the
  same weights. At the start of each epoch the policy compares the weighted mean loss
  of the coreset images observed since the selection with its value at selection time;
  it selects again when the relative change exceeds ``tau``, or when the coreset is
  ``max_interval`` epochs old.
- **Dropping learned images** (optional, ``drop_after``): an image whose loss was below
  the ``drop_quantile`` quantile of the split's latest losses (recomputed each epoch)
  for ``drop_after`` consecutive observations leaves the pool at the next selection,
  for good; the pool never shrinks below ``min(n, 2 K)`` images (lowest losses go
  first), so the selection keeps choosing at most half of what it sees.

Where it departs from the paper and the reference code, and why:

- **Gradient proxy.** CREST uses last-layer gradients (softmax minus one-hot) from an
  extra forward pass over the random subsets at every selection. The trainer hands a
  policy only each forwarded image's scalar loss after the backward pass, and a
  detector has no single per-image softmax, so the proxy is the loss history above.
  It costs no forward pass, but it is stale for images not forwarded since their last
  snapshot (their loss is carried forward, i.e. their change reads as 0).
- **Re-selection rule.** CREST checks every ``check_interval`` steps whether
  ``|L_true - L_quad| > tau * L_true`` on the random subsets, ``L_quad`` being the loss
  at selection plus gradient and Hessian-diagonal (AdaHessian) terms along the
  accumulated parameter change, which needs second-order backward passes and forward
  passes over the random subsets. With scalar losses only, the model here is of order
  zero (the loss has not moved) and is checked on the coreset's own forwards: a
  relative change of its weighted mean loss beyond ``tau`` (``tau`` plays the role of
  CREST's ``check_thresh_factor``, default 0.1 as there), plus a ``max_interval`` cap
  because a zero-order check cannot see a model moving along the loss' level set.
  CREST's adaptation of the check interval and of the number of mini-batch coresets to
  the curvature norm is not reproduced.
- **Epoch granularity.** CREST re-selects at any step; here the check and the selection
  happen at epoch starts, because the sampler draws an epoch's order once (changing it
  mid-epoch would serve prefetched batches of a stale coreset). An epoch over a
  coreset is ``fraction`` of a full one, so a check every epoch is still frequent.
- **Random subsets and budget.** CREST draws class-stratified random subsets
  independently (they may overlap) and selects one mini-batch (``B`` examples) from
  each. Detection images hold several classes, so the subsets here are uniform and
  disjoint (a random partition of the pool), and each yields its share of the epoch's
  budget, so that an epoch forwards ``fraction`` of the split. Disjointness also avoids
  a quirk of the reference: an example chosen from two overlapping subsets is
  forwarded twice but keeps only the last weight assigned to it
  (``train_weights[subset] = subset_weights`` with repeated indices).
- **Greedy.** CREST maximizes facility location with submodlib's lazy greedy; here it is
  stochastic greedy (Mirzasoleiman et al., "Lazier Than Lazy Greedy", AAAI 2015), in
  numpy: each step evaluates ``ceil(m / k * ln(1 / 0.01))`` random candidates (all of
  them when that is more), a ``1 - 1/e - 0.01`` approximation in expectation.
- **Warm-up.** CREST's first epoch trains on random mini-batches of the whole set for
  ``train_frac`` of the steps; here the warm-up epochs forward every image, since an
  image without a loss has no proxy.
- **Dropping learned examples.** CREST (``drop_learned``) drops, every
  ``drop_interval`` epochs, the examples whose loss stayed at most ``drop_thresh``
  (an absolute cross-entropy value, 0.1) over the last ``watch_interval`` epochs,
  per class, keeping ``min_train_size``. YOLO's loss scale depends on the model and
  the data, so the threshold here is a quantile of the split's losses; the check runs
  at each selection. Off by default, as in the reference.
- Mosaic and processes, as for InfoBatch (:mod:`detreduce.train.infobatch`): a mosaic
  sample's loss is attributed to the indexed image; one process only (the trainer
  refuses a loss-reading policy under DDP).

Warm-up of the optimizer and the LR schedule keep the full split's nominal epoch
(:class:`~detreduce.train.trainer.PolicyDataLoader`), so a coreset epoch ends early and
the optimizer takes fewer steps, which is the saving.

Complexity: a selection over a pool of ``p`` images in subsets of ``m <= subset_size <=
2000`` images holds one ``m x m`` distance matrix at a time (32 MB at ``m = 2000``) and
costs ``O(p * m * (history + ln 100))`` time; bookkeeping is ``O(n * history)`` memory and
``O(B)`` per batch. Randomness comes from ``np.random.default_rng([seed, epoch, 2])``,
so a run is reproducible and asking twice for an epoch gives one answer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detreduce.errors import ConfigError
from detreduce.train.policy import TrainingPolicy

#: Largest random subset: facility location holds an m x m matrix (O(m^2) memory).
MAX_SUBSET_SIZE = 2000
#: Stochastic greedy's epsilon (expected approximation 1 - 1/e - epsilon).
GREEDY_EPSILON = 0.01


# ---------------------------------------------------------------------- the math
def facility_location(
    proxies: np.ndarray, k: int, rng: np.random.Generator, epsilon: float = GREEDY_EPSILON
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy facility-location coreset of ``k`` of the ``m`` rows of ``proxies`` (m x d).

    Maximizes ``F(S) = sum_i max_{j in S} (max(d) - d_ij)`` (``d`` Euclidean) by
    stochastic greedy: each step adds the best of ``ceil(m / k * ln(1 / epsilon))``
    random candidates (every remaining row when that is more: plain greedy). Returns
    the selected rows in selection order and their weights: how many rows have each
    selected row as their nearest selected one (itself included, so every weight is at
    least 1 and the weights sum to ``m``). O(m^2) memory, O(m^2 (d + ln(1/epsilon))) time.
    """
    x = np.asarray(proxies, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"facility_location: proxies must be 2-D, got shape {x.shape}")
    m = len(x)
    if not 0 <= k <= m:
        raise ValueError(f"facility_location: k must be in [0, {m}], got {k}")
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    sq = (x * x).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(dist, 0.0)
    sim = dist.max() - dist
    covered = np.zeros(m)  # max similarity of each row to the selection (F(empty) = 0)
    free = np.ones(m, dtype=bool)
    n_eval = math.ceil(m / k * math.log(1.0 / epsilon))
    chosen = np.empty(k, dtype=np.int64)
    for step in range(k):
        candidates = np.flatnonzero(free)
        if len(candidates) > n_eval:
            candidates = rng.choice(candidates, size=n_eval, replace=False)
        gains = np.maximum(sim[:, candidates] - covered[:, None], 0.0).sum(0)
        best = int(candidates[int(np.argmax(gains))])
        chosen[step] = best
        free[best] = False
        np.maximum(covered, sim[:, best], out=covered)
    nearest = np.argmin(dist[:, chosen], axis=1)
    nearest[chosen] = np.arange(k)  # a selected row represents itself (ties of equal proxies)
    return chosen, np.bincount(nearest, minlength=k).astype(float)


def loss_proxy(history: np.ndarray) -> np.ndarray:
    """Standardized loss-history proxies from an (m, h) array of loss snapshots.

    Column 0 is the latest snapshot; NaN (not yet seen at that snapshot) takes the
    next more recent value in its row (the loss is taken as constant before the image
    was first seen). Each column is then z-scored over the rows (a constant column
    becomes 0). Rows must have a latest value.
    """
    h = np.array(history, dtype=float, copy=True)
    if h.ndim != 2 or np.isnan(h[:, 0]).any():
        raise ValueError("loss_proxy: need an (m, h) array whose first column has no NaN")
    if not len(h):
        return h
    for j in range(1, h.shape[1]):
        h[:, j] = np.where(np.isnan(h[:, j]), h[:, j - 1], h[:, j])
    std = h.std(0)
    return (h - h.mean(0)) / np.where(std > 0, std, 1.0)


def _shares(budget: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``budget`` over parts of ``sizes`` in proportion (largest remainder), each <= size."""
    quota = budget * sizes / sizes.sum()
    out = np.floor(quota).astype(np.int64)
    extra = budget - int(out.sum())
    if extra > 0:
        out[np.argsort(-(quota - out), kind="stable")[:extra]] += 1
    return out


# ---------------------------------------------------------------------- the policy
class CrestPolicy(TrainingPolicy):
    """CREST (Yang et al., ICML 2023): weighted facility-location coresets from random
    subsets, on a loss-history gradient proxy, re-selected when the coreset's loss
    drifts past ``tau`` (module docstring: the rule and its departures).

    Parameters: ``fraction`` of the split each coreset epoch forwards; ``subset_size``
    images per random subset (at most 2000: O(m^2) memory); ``n_subsets`` random subsets
    per selection (None: a partition of the pool); ``history`` epoch snapshots in the
    proxy; ``tau`` relative loss drift that triggers a re-selection; ``max_interval``
    epochs a coreset lives at most; ``warmup_epochs`` full epochs first; ``drop_after``
    consecutive low-loss observations that drop an image (None: never) and
    ``drop_quantile`` the quantile that counts as low.
    """

    name = "crest"
    summary = (
        "CREST: each epoch forwards weighted facility-location coresets (fraction of the "
        "split) chosen from random subsets on a loss-history proxy; re-selects when the "
        "coreset's loss drifts past tau or every max_interval epochs"
    )
    reference = (
        "Yang, Xie, Mirzasoleiman et al., Towards Sustainable Learning: Coresets for "
        "Data-efficient Deep Learning, ICML 2023"
    )

    def __init__(
        self,
        fraction: float = 0.5,
        subset_size: int = 500,
        n_subsets: int | None = None,
        history: int = 3,
        tau: float = 0.1,
        max_interval: int = 5,
        warmup_epochs: int = 1,
        drop_after: int | None = None,
        drop_quantile: float = 0.2,
    ) -> None:
        self.fraction = fraction
        self.subset_size = subset_size
        self.n_subsets = n_subsets
        self.history = history
        self.tau = tau
        self.max_interval = max_interval
        self.warmup_epochs = warmup_epochs
        self.drop_after = drop_after
        self.drop_quantile = drop_quantile

    # ------------------------------------------------------------------ parameters
    def _check(self) -> None:
        def number(name: str, lo: float, hi: float, lo_open: bool, hi_open: bool) -> None:
            v = getattr(self, name)
            ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
            ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
            if not ok:
                span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
                raise ConfigError(f"crest: {name} must be a number in {span}, got {v!r}")

        def integer(name: str, lo: int, hi: int | None = None, none_ok: bool = False) -> None:
            v = getattr(self, name)
            if v is None and none_ok:
                return
            ok = isinstance(v, int | np.integer) and not isinstance(v, bool)
            if not ok or v < lo or (hi is not None and v > hi):
                span = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                alt = " or None" if none_ok else ""
                raise ConfigError(f"crest: {name} must be an integer {span}{alt}, got {v!r}")

        number("fraction", 0.0, 1.0, lo_open=True, hi_open=False)
        integer("subset_size", 2, MAX_SUBSET_SIZE)
        integer("n_subsets", 1, none_ok=True)
        integer("history", 1)
        number("tau", 0.0, math.inf, lo_open=True, hi_open=True)
        integer("max_interval", 1)
        integer("warmup_epochs", 0)
        integer("drop_after", 1, none_ok=True)
        number("drop_quantile", 0.0, 1.0, lo_open=True, hi_open=True)

    # ------------------------------------------------------------------ hooks
    def setup(self, n_images: int, epochs: int, seed: int) -> None:
        super().setup(n_images, epochs, seed)
        n = self.n_images_
        self.budget_ = max(1, round(self.fraction * n))
        if self.n_subsets is not None and self.n_subsets * self.subset_size < self.budget_:
            raise ConfigError(
                f"crest: n_subsets * subset_size = {self.n_subsets * self.subset_size} "
                f"images cannot fill fraction * n = {self.budget_} of {n}; raise n_subsets "
                "or subset_size, or leave n_subsets None"
            )
        self.latest_ = np.full(n, np.nan)  # each image's latest observed loss
        self.snapshots_ = np.full((n, int(self.history)), np.nan)  # column 0: latest epoch
        self.snapshot_epoch_ = -1
        self.weights_ = np.ones(n)
        self.observed_ = np.zeros(n, dtype=bool)  # observed since the last selection
        self.dropped_ = np.zeros(n, dtype=bool)
        self.streak_ = np.zeros(n, dtype=np.int64)
        self.drop_threshold_ = math.nan
        self.coreset_ = np.zeros(0, dtype=np.int64)
        self.epoch_answer_ = np.arange(n, dtype=np.int64)
        self.selected_at_ = -1  # epoch of the last selection (-1: none yet)
        self.reference_loss_ = math.nan
        self.selection_epochs_: list[int] = []
        self.drift_per_epoch_: dict[int, float] = {}
        self.dropped_per_epoch_: dict[int, int] = {}
        self._answered_epoch = -1

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The epoch's images: all during warm-up, else the current (or a new) coreset.

        Decided once per epoch (when the sampler is first iterated) and cached, so a
        second call within the epoch gives the same answer although losses moved.
        """
        if epoch == self._answered_epoch:
            return self.epoch_answer_
        self._snapshot(epoch)
        pool = ~self.dropped_
        if epoch < self.warmup_epochs or not (pool & ~np.isnan(self.snapshots_[:, 0])).any():
            answer = np.flatnonzero(pool)
            self.weights_ = np.ones(self.n_images_)
        elif self._due(epoch):
            answer = self._select(epoch)
        else:
            answer = self.epoch_answer_
        self.epoch_answer_ = answer
        self._answered_epoch = epoch
        return answer

    def loss_weights(self, indices: np.ndarray) -> np.ndarray:
        """The coreset weights (average 1 over an epoch's coreset); 1 in warm-up epochs."""
        return self.weights_[np.asarray(indices, dtype=np.int64)]

    def observe(self, indices: np.ndarray, per_image_loss: np.ndarray) -> None:
        """Record each forwarded image's latest (unweighted) loss and its low-loss streak."""
        idx = np.asarray(indices, dtype=np.int64)
        loss = np.asarray(per_image_loss, dtype=float)
        self.latest_[idx] = loss
        self.observed_[idx] = True
        if self.drop_after is not None:
            low = loss < self.drop_threshold_  # False while the threshold is NaN
            self.streak_[idx] = np.where(low, self.streak_[idx] + 1, 0)

    def report(self) -> dict[str, Any]:
        out = super().report()
        if not hasattr(self, "n_images_"):
            return out
        last = max(max(self.scheduled_, default=-1), self._answered_epoch)
        out["selections"] = len(self.selection_epochs_)
        out["selection_epochs"] = list(self.selection_epochs_)
        drift = (
            self.drift_per_epoch_
        )  # None: not checked (warm-up, first selection, nothing forwarded)
        out["drift_per_epoch"] = [
            round(drift[e], 6) if math.isfinite(drift.get(e, math.nan)) else None
            for e in range(last + 1)
        ]
        out["images_dropped"] = int(self.dropped_.sum())
        out["dropped_per_epoch"] = [int(self.dropped_per_epoch_.get(e, 0)) for e in range(last + 1)]
        out["coreset_size"] = len(self.coreset_)
        out["images_scored"] = int(np.count_nonzero(~np.isnan(self.latest_)))
        return out

    # ------------------------------------------------------------------ internals
    def _snapshot(self, epoch: int) -> None:
        """At an epoch's start: shift in the latest losses; refresh the drop threshold."""
        if epoch <= self.snapshot_epoch_:
            return
        self.snapshot_epoch_ = epoch
        self.snapshots_[:, 1:] = self.snapshots_[:, :-1]
        self.snapshots_[:, 0] = self.latest_
        known = ~np.isnan(self.latest_) & ~self.dropped_
        if self.drop_after is not None and known.any():
            self.drop_threshold_ = float(np.quantile(self.latest_[known], self.drop_quantile))

    def _coreset_loss(self) -> float:
        """Weighted mean of the coreset's latest losses (NaN: none observed since selection)."""
        seen = self.coreset_[self.observed_[self.coreset_]]
        if not len(seen):
            return math.nan
        w = self.weights_[seen]
        return float((w * self.latest_[seen]).sum() / w.sum())

    def _due(self, epoch: int) -> bool:
        """Select now? No coreset yet, one ``max_interval`` epochs old, or loss drift > tau."""
        if self.selected_at_ < 0 or not len(self.coreset_):
            return True
        if epoch <= self.selected_at_:  # an earlier epoch asked again: keep the coreset
            return False
        now = self._coreset_loss()
        if math.isnan(now):  # nothing forwarded since the selection: no evidence of drift
            return epoch - self.selected_at_ >= self.max_interval
        ref = self.reference_loss_
        drift = abs(now - ref) / ref if ref > 0 else (0.0 if now == ref else math.inf)
        self.drift_per_epoch_[epoch] = drift
        return drift > self.tau or epoch - self.selected_at_ >= self.max_interval

    def _drop_learned(self, epoch: int) -> None:
        """Drop the pool's images with a low-loss streak of ``drop_after`` (keep a floor)."""
        if self.drop_after is None:
            return
        pool = ~self.dropped_
        floor = min(self.n_images_, 2 * self.budget_)
        room = int(pool.sum()) - floor
        learned = np.flatnonzero(pool & (self.streak_ >= self.drop_after))
        if room <= 0 or not len(learned):
            return
        learned = learned[np.argsort(self.latest_[learned], kind="stable")[:room]]
        self.dropped_[learned] = True
        self.dropped_per_epoch_[epoch] = len(learned)

    def _select(self, epoch: int) -> np.ndarray:
        """Draw random subsets of the pool, a weighted coreset from each; the epoch's answer."""
        self._drop_learned(epoch)
        rng = np.random.default_rng([self.seed_ % (1 << 64), epoch, 2])
        pool = ~self.dropped_
        unseen = np.flatnonzero(pool & np.isnan(self.snapshots_[:, 0]))  # no proxy yet
        seen = np.flatnonzero(pool & ~np.isnan(self.snapshots_[:, 0]))
        n_parts = math.ceil(len(seen) / self.subset_size)
        if self.n_subsets is not None:
            n_parts = min(self.n_subsets, len(seen))
        candidates = rng.permutation(seen)[: n_parts * self.subset_size]
        # disjoint random subsets (sizes differ by at most 1), as row ranges of candidates
        parts = np.array_split(np.arange(len(candidates)), n_parts) if n_parts else []
        budget = min(max(self.budget_ - len(unseen), 0), len(candidates))
        shares = _shares(budget, np.array([len(p) for p in parts])) if parts else []
        proxies = loss_proxy(self.snapshots_[candidates])  # standardized over all subsets
        chosen, weights = [], []
        for rows, k in zip(parts, shares, strict=True):
            if k == 0:
                continue
            picked, w = facility_location(proxies[rows], int(k), rng)
            chosen.append(candidates[rows[picked]])
            weights.append(w)
        coreset = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        w = np.concatenate(weights) if weights else np.zeros(0)
        self.weights_ = np.ones(self.n_images_)
        if len(coreset):
            self.weights_[coreset] = w * len(coreset) / w.sum()  # average 1 over the coreset
        self.coreset_ = coreset.astype(np.int64)
        self.observed_[:] = False
        self.reference_loss_ = self._reference_loss()
        self.selected_at_ = epoch
        self.selection_epochs_.append(epoch)
        return np.sort(np.concatenate([self.coreset_, unseen]))

    def _reference_loss(self) -> float:
        """The coreset's weighted mean loss at selection time (its latest losses)."""
        if not len(self.coreset_):
            return math.nan
        w = self.weights_[self.coreset_]
        return float((w * self.latest_[self.coreset_]).sum() / w.sum())
