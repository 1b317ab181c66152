"""An Ultralytics detection trainer that trains only, and counts what it does.

Importing this module imports Ultralytics (offline): keep the import lazy.

Why a subclass: Ultralytics validates after every epoch (``val=False`` still validates
the last epoch, then ``best.pt`` again), which mixes validation into training time and
energy. Here training never validates; detreduce validates the final weights once,
as a phase of its own. The counters are read by :func:`detreduce.train.train_yolo`.
"""

from __future__ import annotations

from typing import Any

from detreduce.train.offline import import_ultralytics

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils.torch_utils import strip_optimizer  # noqa: E402


class MeteredTrainer(DetectionTrainer):
    """DetectionTrainer without in-training validation, counting batches, images and steps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iterations = 0
        self.images_seen = 0
        self.optimizer_steps = 0
        self.epochs_run = 0
        # Fitness stays None (no validation) and never equals -inf: best.pt is never written.
        self.best_fitness = float("-inf")

    def preprocess_batch(self, batch: dict) -> dict:
        """Count every training batch and its images (called once per training batch)."""
        self.iterations += 1
        self.images_seen += len(batch["im_file"])
        return super().preprocess_batch(batch)

    def optimizer_step(self) -> None:
        """Count optimizer steps (Ultralytics accumulates gradients up to a batch of 64)."""
        super().optimizer_step()
        self.optimizer_steps += 1

    def run_callbacks(self, event: str) -> None:
        """Count finished training epochs, then run the callbacks as usual."""
        if event == "on_train_epoch_end":
            self.epochs_run += 1
        super().run_callbacks(event)

    def validate(self) -> tuple[dict, None]:
        """Skip validation: no metrics, no fitness, so no ``best.pt`` selection on val."""
        return self.metrics, None

    def final_eval(self) -> None:
        """Strip the optimizer from ``last.pt``; the validation is detreduce's own phase."""
        if self.last.exists():
            strip_optimizer(self.last)
