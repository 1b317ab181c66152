"""EL2N-style selection on per-image YOLO training losses.

Paul, Ganguli and Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples
Early in Training" (NeurIPS 2021): an example's error early in training (EL2N, the L2
norm of its error vector, averaged over a few runs) ranks how much it matters; keeping
the highest-scoring ones prunes with little loss. A detector has no single error
vector per image, so the score here is the image's own detection loss (box + cls + DFL,
the per-image decomposition of Ultralytics' loss in :mod:`detreduce.train.loss`) from a
short proxy training run (:mod:`detreduce.train.scores`), averaged over its epochs.

``keep``: ``hard`` keeps the highest mean losses first (the paper); ``easy`` the lowest
(Sorscher et al., "Beyond neural scaling laws", NeurIPS 2022: at small budgets the
easy examples are the better ones to keep); ``mix`` half of the budget from the hardest
and half uniformly at random from the rest, a guard against keeping only outliers and
mislabelled boxes. Joint over strata (the losses are per row of the whole split),
quotas per stratum as given. O(n log n).

Scores: the mean loss per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detreduce.config import default
from detreduce.errors import ConfigError
from detreduce.reducers._params import check_choice
from detreduce.reducers._strata import JointReducer, interleave
from detreduce.reducers.base import ReducerResult, register

_D = default("reducers.el2n")
KEEP = ("hard", "easy", "mix")


@register("loss", "data_diet")
class EL2NReducer(JointReducer):
    """Keep images by their YOLO training loss early in training (hardest first by default)."""

    name = "el2n"
    summary = "per-image YOLO loss early in training (EL2N-style), hardest first or a mix"
    reference = "Paul et al. 2021 (NeurIPS), Deep Learning on a Data Diet"
    uses_features = False
    uses_losses = True
    row_params = ("losses",)

    def __init__(self, keep: str = _D["keep"], losses: Any = _D["losses"]):
        self.keep = keep
        self.losses = losses

    def get_params(self) -> dict[str, Any]:
        out = super().get_params()
        if out["losses"] is not None:
            out["losses"] = f"<array of shape {np.shape(out['losses'])}>"
        return out

    def _check(self) -> None:
        check_choice(self.name, "keep", self.keep, KEEP)
        if self.losses is None:
            raise ConfigError(
                "method 'el2n' needs per-image YOLO losses: run it in `detreduce sweep` "
                "(a short proxy training computes them once) or pass losses=(n,) or (n, epochs)"
            )

    def _check_rows(self, n: int) -> None:
        arr = np.asarray(self.losses, dtype=np.float64)
        if arr.ndim not in (1, 2) or len(arr) != n or not np.isfinite(arr).all():
            raise ConfigError(
                f"method 'el2n': losses must be finite numbers with one row per row of X ({n}), "
                f"shape (n,) or (n, epochs); got shape {arr.shape}"
            )

    def _select_joint(self, X, groups, rows, quotas, rng):
        losses = np.asarray(self.losses, dtype=np.float64)
        score = losses.mean(axis=1) if losses.ndim == 2 else losses
        rand = rng.random(len(score))
        orders = []
        for r, q in zip(rows, quotas, strict=True):
            if not q:
                continue
            ranked = r[np.lexsort((rand[r], score[r] if self.keep == "easy" else -score[r]))]
            if self.keep == "mix":
                hard = ranked[: (q + 1) // 2]
                rest = ranked[(q + 1) // 2 :]
                ranked = np.concatenate([hard, rng.permutation(rest)])
            orders.append(ranked[:q])
        return ReducerResult(indices=interleave(orders), scores=score)
