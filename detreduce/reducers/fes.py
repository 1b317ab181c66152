"""FES: forgetting-events selection (Toneva et al. 2019, "An empirical study of example
forgetting during deep neural network learning").

A forgetting event is a row going from correctly to wrongly classified between two
evaluations during training; rows forgotten often (or never learned) are the hard,
informative ones, while unforgettable rows can be dropped. The seed paper trains a
small CNN on the images and evaluates after every epoch; rows never learned get the
maximum count (the number of epochs), and each class keeps its most forgotten rows.

Here the proxy is cheap: a softmax-regression head (or one hidden ReLU layer of width
``hidden``) on the standardised embeddings, trained with Adam for ``epochs`` epochs of
mini-batches (numpy, seeded), predicting the row's stratum (``groups``) or, with at most
one group, ``n_clusters`` k-means pseudo-labels. Every row is evaluated after every
epoch. Ties in the count (most rows are never forgotten) are broken by the mean
training loss over the epochs (harder first), then at random. O(epochs·n·d·C).

Signals from elsewhere skip the proxy: ``forget_counts`` (n,) counts from any training
run, or ``losses`` per row from a YOLO run, either (n,) (kept hardest first) or
(n, epochs), whose loss increases between consecutive epochs count as forgetting events
(ties by mean loss). Joint over strata (the labels are the strata), quotas per stratum
(:func:`._strata.group_quotas`: proportional, or the caller's ``quotas``).

Scores: the forgetting count (or the given signal) per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detreduce.config import default
from detreduce.errors import ConfigError
from detreduce.reducers._kmeans import kmeans
from detreduce.reducers._params import check_float, check_int
from detreduce.reducers._strata import (
    JointReducer,
    interleave,
)
from detreduce.reducers.base import ReducerResult, register

_D = default("reducers.fes")


class _Adam:
    """Adam (Kingma & Ba 2015) over a list of numpy parameters, in place."""

    def __init__(self, params: list[np.ndarray], lr: float):
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + 1e-8)


def _softmax_ce(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row cross-entropy and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))
    p[np.arange(len(y)), y] -= 1.0
    return loss, p


def forgetting_events(
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    hidden: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Train the proxy; return ``(forgetting counts, mean loss)`` per row.

    Never-learned rows (wrong after every epoch) get ``epochs``, above any real count.
    """
    n, d = X.shape
    classes = int(y.max()) + 1
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    Xs = (X - mu) / np.where(sd > 0, sd, 1.0)
    if hidden > 0:
        W1 = (rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d)).astype(np.float32)
        params = [W1, np.zeros(hidden, np.float32), np.zeros((hidden, classes), np.float32)]
    else:
        params = [np.zeros((d, classes), np.float32)]
    params.append(np.zeros(classes, np.float32))
    opt = _Adam(params, lr)

    def forward(A: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if hidden > 0:
            H = np.maximum(A @ params[0] + params[1], 0.0)
            return H @ params[2] + params[3], H
        return A @ params[0] + params[1], None

    correct_before = np.zeros(n, dtype=bool)
    ever = np.zeros(n, dtype=bool)
    counts = np.zeros(n, dtype=np.int64)
    loss_sum = np.zeros(n)
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            b = order[s : s + batch_size]
            logits, H = forward(Xs[b])
            _, g = _softmax_ce(logits, y[b])
            g /= len(b)
            if hidden > 0:
                gH = (g @ params[2].T) * (H > 0)
                grads = [Xs[b].T @ gH, gH.sum(0), H.T @ g, g.sum(0)]
            else:
                grads = [Xs[b].T @ g, g.sum(0)]
            opt.step(grads)
        correct = np.empty(n, dtype=bool)
        for s in range(0, n, 8192):
            logits, _ = forward(Xs[s : s + 8192])
            loss, _ = _softmax_ce(logits, y[s : s + 8192])
            loss_sum[s : s + 8192] += loss
            correct[s : s + 8192] = logits.argmax(axis=1) == y[s : s + 8192]
        counts += correct_before & ~correct
        ever |= correct
        correct_before = correct
    counts[~ever] = epochs
    return counts, loss_sum / max(epochs, 1)


@register("forgetting", "forgetting_events")
class FESReducer(JointReducer):
    """Keep the most forgotten rows of a cheap proxy (or of a given per-row signal)."""

    name = "fes"
    summary = "forgetting events of a proxy head on the embeddings (most forgotten first)"
    uses_losses = True
    row_params = (
        "forget_counts",
        "losses",
    )  # real YOLO losses replace the proxy head when a sweep has them
    reference = "Toneva et al. 2019 (ICLR); Perera-Lago et al. 2024, arXiv 2403.15150"

    def __init__(
        self,
        epochs: int = _D["epochs"],
        lr: float = _D["lr"],
        batch_size: int = _D["batch_size"],
        hidden: int = _D["hidden"],
        n_clusters: int = _D["n_clusters"],
        forget_counts: Any = _D["forget_counts"],
        losses: Any = _D["losses"],
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.hidden = hidden
        self.n_clusters = n_clusters
        self.forget_counts = forget_counts
        self.losses = losses

    def get_params(self) -> dict[str, Any]:
        """Parameters, with per-row arrays summarised (they do not belong in a manifest)."""
        out = super().get_params()
        for key in ("forget_counts", "losses"):
            if out[key] is not None:
                out[key] = f"<array of shape {np.shape(out[key])}>"
        return out

    def _check(self) -> None:
        check_int(self.name, "epochs", self.epochs, low=1)
        check_float(self.name, "lr", self.lr, low=0, low_open=True)
        check_int(self.name, "batch_size", self.batch_size, low=1)
        check_int(self.name, "hidden", self.hidden, low=0)
        check_int(self.name, "n_clusters", self.n_clusters, low=2)
        if self.forget_counts is not None and self.losses is not None:
            raise ConfigError("method 'fes': give forget_counts or losses, not both")

    def _check_rows(self, n: int) -> None:
        """``forget_counts`` / ``losses`` given from elsewhere must have one row per row."""
        for key, ndims in (("forget_counts", (1,)), ("losses", (1, 2))):
            value = getattr(self, key)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim not in ndims or len(arr) != n or not np.isfinite(arr).all():
                raise ConfigError(
                    f"method 'fes': parameter {key} must be finite numbers with one row per "
                    f"row of X ({n}), shape {'(n,)' if ndims == (1,) else '(n,) or (n, epochs)'}; "
                    f"got shape {arr.shape}"
                )

    def _signal(self, X, groups, rng) -> tuple[np.ndarray, np.ndarray]:
        """Primary score (higher = kept first) and tie-breaker per row."""
        if self.forget_counts is not None:
            counts = np.asarray(self.forget_counts, dtype=np.float64)
            return counts, np.zeros(len(X))
        if self.losses is not None:
            losses = np.asarray(self.losses, dtype=np.float64)
            if losses.ndim == 1:
                return losses, np.zeros(len(X))
            return (np.diff(losses, axis=1) > 0).sum(axis=1).astype(float), losses.mean(axis=1)
        labels = None
        if groups is not None:
            _, labels = np.unique(groups, return_inverse=True)
        if labels is None or labels.max() < 1:
            c = min(int(self.n_clusters), len(X))
            labels = kmeans(X, c, rng)[1] if c >= 2 else np.zeros(len(X), dtype=np.int64)
        if labels.max() < 1:  # one class only: nothing to learn, nothing forgotten
            return np.zeros(len(X)), np.zeros(len(X))
        counts, mean_loss = forgetting_events(
            X,
            labels.astype(np.int64),
            epochs=int(self.epochs),
            lr=float(self.lr),
            batch_size=int(self.batch_size),
            hidden=int(self.hidden),
            rng=rng,
        )
        return counts.astype(float), mean_loss

    def _select_joint(self, X, groups, rows, quotas, rng):
        score, tie = self._signal(X, groups, rng)
        rand = rng.random(len(X))
        orders = [
            r[np.lexsort((rand[r], -tie[r], -score[r]))][:q]
            for r, q in zip(rows, quotas, strict=True)
            if q
        ]
        return ReducerResult(indices=interleave(orders), scores=score)
