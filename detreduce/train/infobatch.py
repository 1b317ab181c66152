"""InfoBatch for YOLO: unbiased dynamic data pruning inside the Ultralytics trainer.

Qin, Wang et al., "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data
Pruning", ICLR 2024 (reference code: github.com/NUS-HPC-AI-Lab/InfoBatch,
``infobatch/infobatch.py``). Each image's score is its latest training loss. At the
start of every epoch, the images whose score is below the mean of the scores are
"well learned"; a random ``prune_ratio`` share of them is left out of that epoch, and
the well-learned images that stay have their loss scaled by ``1 / (1 - prune_ratio)``,
so the expected gradient over the epoch stays that of the full split. The last
``1 - delta`` share of the epochs trains on every image with weight 1 (annealing).

For detection, the loss of an image is the sum of its box, cls and DFL terms from
:mod:`detreduce.train.loss` (the per-image decomposition of Ultralytics' loss, with
autograd intact, so the rescaling really reaches the gradients).

Where it departs from the reference code, and why:

- Unseen images have no score (NaN) and are never "well learned"; the mean is taken
  over the images seen so far. The reference initialises every score to 3, which on
  YOLO's loss scale (box + cls + DFL, often above 3) would mark unseen images as
  well learned. Epoch 0 therefore trains on every image, as in the reference.
- Annealing: the last ``round((1 - delta) * epochs)`` epochs, at least one when
  ``delta < 1``, train on everything. The reference prunes while
  ``e <= delta * epochs``, which for 8 epochs and ``delta = 0.875`` prunes every epoch;
  the paper's intent is the last ``1 - delta``, and a short fine-tuning run (4 epochs)
  should still end on every image.
- Randomness comes from ``numpy.random.default_rng([seed, epoch, 1])``, not the
  global numpy seed the reference sets per epoch, so a run is reproducible whatever
  else draws random numbers, and asking twice for one epoch gives one answer.
- Mosaic: Ultralytics composes a training sample from the indexed image and three
  random others; the sample's loss is attributed to the indexed image (the one the
  sampler asked for), as the reference attributes a sample's loss to its index.
- One process only: the reference all-gathers scores across ranks; detreduce's
  trainer refuses a loss-reading policy under DDP rather than keep per-rank scores.

Warm-up and the LR schedule: Ultralytics steps the LR schedule once per epoch and
places warm-up by ``ni = i + nb * epoch`` with ``nb`` the full split's batch count,
which detreduce's loader keeps (:class:`~detreduce.train.trainer.PolicyDataLoader`),
so a pruned epoch ends early but the schedule, the warm-up's end and the epoch count
are those of plain training (as the reference keeps its epoch-based schedule); the
optimizer takes fewer steps, which is the saving.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detreduce.errors import ConfigError
from detreduce.train.policy import TrainingPolicy


class InfoBatchPolicy(TrainingPolicy):
    """InfoBatch (Qin et al., ICLR 2024): prune well-learned images at random per epoch,
    rescale the kept ones' loss, anneal to full data (module docstring)."""

    name = "infobatch"
    summary = (
        "InfoBatch: each epoch leaves out a random prune_ratio share of the images whose "
        "last loss is below the mean and rescales the rest of them by 1/(1-prune_ratio); "
        "the last 1-delta of the epochs train on all"
    )
    reference = (
        "Qin et al., InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data "
        "Pruning, ICLR 2024"
    )

    def __init__(self, prune_ratio: float = 0.5, delta: float = 0.875) -> None:
        self.prune_ratio = prune_ratio
        self.delta = delta

    def _check(self) -> None:
        r, d = self.prune_ratio, self.delta
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0.0 <= r < 1.0:
            raise ConfigError(f"infobatch: prune_ratio must be in [0, 1), got {r!r}")
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0.0 < d <= 1.0:
            raise ConfigError(f"infobatch: delta must be in (0, 1], got {d!r}")

    def setup(self, n_images: int, epochs: int, seed: int) -> None:
        super().setup(n_images, epochs, seed)
        self.scores_ = np.full(self.n_images_, np.nan)
        self.weights_ = np.ones(self.n_images_)
        self.pruned_per_epoch_: dict[int, int] = {}
        self._epoch_answer: tuple[int, np.ndarray] | None = None

    @property
    def annealing_epochs(self) -> int:
        """Full-data epochs at the end: ``round((1 - delta) * epochs)``, at least 1 when
        ``delta < 1`` (a short fine-tuning run still ends on every image)."""
        if self.delta >= 1.0:
            return 0
        return max(1, round((1.0 - self.delta) * self.epochs_))

    def prunes(self, epoch: int) -> bool:
        """Does epoch ``epoch`` (0-based) prune? Not in the last :attr:`annealing_epochs`."""
        return self.prune_ratio > 0 and epoch < self.epochs_ - self.annealing_epochs

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The epoch's images: all but a random ``prune_ratio`` of the well-learned ones.

        Decided once per epoch (when the sampler is first iterated) and cached, so a
        second call within the epoch gives the same answer although scores moved.
        """
        if self._epoch_answer is not None and self._epoch_answer[0] == epoch:
            return self._epoch_answer[1]
        n = self.n_images_
        self.weights_ = np.ones(n)
        keep = np.ones(n, dtype=bool)
        seen = ~np.isnan(self.scores_)
        if self.prunes(epoch) and seen.any():
            well_learned = np.flatnonzero(seen & (self.scores_ < self.scores_[seen].mean()))
            rng = np.random.default_rng([self.seed_ % (1 << 64), epoch, 1])
            n_keep = int((1.0 - self.prune_ratio) * len(well_learned))  # as the reference
            kept = rng.choice(well_learned, size=n_keep, replace=False)
            keep[well_learned] = False
            keep[kept] = True
            self.weights_[kept] = 1.0 / (1.0 - self.prune_ratio)
        indices = np.flatnonzero(keep)
        self.pruned_per_epoch_[epoch] = int(n - len(indices))
        self._epoch_answer = (epoch, indices)
        return indices

    def loss_weights(self, indices: np.ndarray) -> np.ndarray:
        """1 for most images, ``1 / (1 - prune_ratio)`` for the kept well-learned ones."""
        return self.weights_[np.asarray(indices, dtype=np.int64)]

    def observe(self, indices: np.ndarray, per_image_loss: np.ndarray) -> None:
        """Each forwarded image's score becomes its latest (unweighted) loss."""
        self.scores_[np.asarray(indices, dtype=np.int64)] = np.asarray(per_image_loss, float)

    def report(self) -> dict[str, Any]:
        out = super().report()
        pruned = getattr(self, "pruned_per_epoch_", {})
        out["pruned_per_epoch"] = [
            int(pruned.get(e, 0)) for e in range(max(pruned, default=-1) + 1)
        ]
        out["pruned_total"] = int(sum(pruned.values()))
        scores = getattr(self, "scores_", np.zeros(0))
        out["images_scored"] = int(np.count_nonzero(~np.isnan(scores)))
        if hasattr(self, "epochs_"):
            out["annealing_epochs"] = self.annealing_epochs
        return out
