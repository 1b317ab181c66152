"""Per-image loss scores from a short, real YOLO training run (the "proxy run").

Static methods that rank images by how hard the detector finds them — ``el2n``
(Paul et al. 2021) and ``fes`` (forgetting events, Toneva et al. 2019) — need each
image's loss during training. A proxy run trains the model of the protocol (the
pretrained start, by default) on the whole train split for a few epochs under
:class:`LossRecorder`, a training policy that forwards every image and records the
per-image detection loss (box + cls + DFL, :mod:`detreduce.train.loss`) of each
image in each epoch. Its energy is metered like any training and charged to the
reductions that use its scores (the sweep splits it over them, as it does the
embedding), so a loss-based method's total says what it really cost.

Forgetting events for a detector: ``fes`` counts an event when an image's loss rises
from one epoch to the next (a detector has no single right/wrong per image, and the
loss going up is what "forgetting" means for it), ties broken by the mean loss.

Under mosaic (Ultralytics' default), an epoch's loss of image ``i`` is that of the
composite sample indexed ``i`` (``i`` and three random images): noisy, but each image
is the indexed one exactly once per epoch, and the noise averages over the epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.errors import DetReduceError
from detreduce.train.policy import TrainingPolicy


class LossRecorder(TrainingPolicy):
    """Every image every epoch (plain training), recording each image's loss per epoch."""

    name = "record_losses"
    summary = "plain training that records each image's loss in each epoch (proxy runs)"
    reference = "detreduce.train.scores"

    def setup(self, n_images: int, epochs: int, seed: int) -> None:
        super().setup(n_images, epochs, seed)
        self.losses_ = np.full((self.epochs_, self.n_images_), np.nan)
        self.epoch_ = 0

    def epoch_indices(self, epoch: int) -> None:
        self.epoch_ = int(epoch)
        return None

    def observe(self, indices: np.ndarray, per_image_loss: np.ndarray) -> None:
        self.losses_[self.epoch_, np.asarray(indices, dtype=np.int64)] = per_image_loss


@dataclass(frozen=True)
class ProxyLosses:
    """A proxy run's per-image losses, aligned with the rows of the split it trained on.

    Attributes:
        losses: (n_images, epochs), one loss per image per epoch (row order: the
            exported train split's, i.e. the dataset's train rows).
        result: the proxy run's :class:`~detreduce.train.result.TrainResult` (energy,
            seconds, images forwarded).
    """

    losses: np.ndarray
    result: Any


def proxy_losses(
    data_yaml: str | Path,
    row_files: list[str],
    *,
    out_dir: str | Path,
    settings: Any,
    energy: Any = None,
    train_args: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> ProxyLosses:
    """Train ``data_yaml`` under :class:`LossRecorder` and return its per-image losses.

    ``row_files[i]`` is the image file of row ``i`` (the exported train split's
    ``train.txt`` lines, in row order); the recorder's dataset indices are mapped back
    to rows by file, since Ultralytics sorts the list. ``settings`` are the
    :class:`~detreduce.settings.TrainSettings` of the run (epochs: the proxy's).
    """
    from detreduce.train.yolo import train_yolo

    recorder = LossRecorder()
    result = train_yolo(
        data_yaml, out_dir=out_dir, settings=settings, energy=energy, policy=recorder,
        train_args=train_args, overwrite=overwrite,
    )  # fmt: skip
    position = {os.path.realpath(f): i for i, f in enumerate(row_files)}
    files = getattr(recorder, "image_files_", [])
    rows = [position.get(os.path.realpath(f)) for f in files]
    if len(files) != len(row_files) or any(r is None for r in rows):
        raise DetReduceError(
            f"proxy run: its {len(files)} training images do not match the split's "
            f"{len(row_files)} rows (train.txt changed while it ran?)"
        )
    losses = np.full((len(row_files), recorder.epochs_), np.nan)
    losses[np.asarray(rows, dtype=np.int64)] = recorder.losses_.T
    if np.isnan(losses).any():
        missing = int(np.isnan(losses).any(axis=1).sum())
        raise DetReduceError(f"proxy run: {missing} images got no loss in some epoch")
    return ProxyLosses(losses=losses, result=result)
