"""An Ultralytics detection trainer that trains only, counts what it does, and obeys a policy.

Importing this module imports Ultralytics (offline): keep the import lazy.

Why a subclass: Ultralytics validates after every epoch (``val=False`` still validates
the last epoch, then ``best.pt`` again), which mixes validation into training time and
energy. Here training never validates; detreduce validates the final weights once,
as a phase of its own. The counters are read by :func:`detreduce.train.train_yolo`.

Which images each epoch forwards is a :class:`~detreduce.train.policy.TrainingPolicy`'s
decision (``full`` when none is given, so every run takes the same path). Ultralytics
8.4 has no sampler argument, so :meth:`MeteredTrainer.get_dataloader` builds the train
loader itself. The mechanism, read from the installed package:

- Ultralytics' own ``InfiniteDataLoader`` (``ultralytics/data/build.py:45-127``) wraps
  its batch sampler in a ``_RepeatSampler`` that iterates it forever through one
  persistent iterator; an epoch is just the next ``len(self)`` batches (``__iter__``,
  build.py:82-87). An epoch boundary is no new ``iter()`` on the sampler, and with
  workers the next epoch's indices are drawn while the current epoch's last batches are
  still in flight (``prefetch_factor`` 4 per worker, build.py:410), before
  ``on_train_epoch_start`` fires. A sampler there cannot know its epoch, nor see what
  the policy learned at the end of the previous one.
- :class:`PolicyDataLoader` is a plain ``torch.utils.data.DataLoader`` with
  ``persistent_workers`` (workers are forked once, as in Ultralytics): every
  ``iter()`` is exactly one epoch, and torch draws the sampler's order for it at that
  moment (``_MultiProcessingDataLoaderIter._reset`` re-iterates the index sampler and
  only then prefetches). Its ``__iter__`` is a generator, so nothing is drawn until the
  first batch is requested: ``_do_train`` calls ``enumerate(self.train_loader)`` twice
  per epoch (trainer.py:506 and 516) and may ``reset()`` the loader in between to close
  mosaic (trainer.py:508-511); only the second one is consumed, at trainer.py:518.
- The epoch reaches the sampler through :meth:`PolicySampler.set_epoch`, called in
  ``run_callbacks("on_train_epoch_start")`` (trainer.py:497-498, ``self.epoch`` is set
  just before), and under DDP by Ultralytics itself (trainer.py:504-505). Both run
  before trainer.py:518, so the order is drawn for the right epoch, after the previous
  epoch ended, whatever the number of workers.
- ``nb = len(self.train_loader)`` is read once before the epoch loop (trainer.py:474)
  and drives the warm-up (``nw``, trainer.py:475 and 276-279), the step position
  ``ni = i + nb * epoch`` (trainer.py:521) and the accumulation cap (trainer.py:324).
  The rule: ``len(PolicyDataLoader)`` is the *nominal* batch count, that of an epoch
  over the whole split (what Ultralytics' own loader would report), so warm-up lasts
  ``warmup_epochs`` epochs and ``ni`` measures progress in epochs of the full split, as
  in plain training. An epoch a policy shrinks yields fewer batches (its sampler's
  ``len`` is exact; :attr:`PolicyDataLoader.epoch_batches` gives its batch count) and
  ``ni`` jumps to the next nominal epoch start at the boundary: the first batch of the
  next epoch then steps the optimizer with what was accumulated, and the progress bar
  stops short of its total. Learning rates are per epoch (``LambdaLR``) and unchanged.

Mosaic: Ultralytics' mosaic (``ultralytics/data/augment.py`` ``Mosaic``) puts the sampled
image in the first tile and fills the others from the dataset's buffer of recently
loaded images (the split, with ``cache='ram'``), so an image a policy left out of an
epoch can still appear in another image's tile. Counts and the composite's ``im_file``
name the sampled image, the one the sampler chose (``Mosaic._cat_labels``,
augment.py:770).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from detreduce.errors import ConfigError
from detreduce.train.convergence import Convergence, CurvePoint
from detreduce.train.offline import import_ultralytics
from detreduce.train.policy import FullPolicy, TrainingPolicy, as_policy

import_ultralytics()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.utils.data import BatchSampler, DataLoader, Sampler  # noqa: E402
from ultralytics.data.build import seed_worker  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER, RANK  # noqa: E402
from ultralytics.utils.torch_utils import (  # noqa: E402
    get_torch_device_backend,
    strip_optimizer,
    torch_distributed_zero_first,
)

#: The batch key holding the forwarded images' dataset indices (int64 numpy array).
INDEX_KEY = "dataset_index"


class PolicySampler(Sampler[int]):
    """Yields one epoch of dataset indices, asked from the policy when it is iterated.

    ``set_epoch`` says which epoch the next iteration is (the trainer calls it before
    the epoch's iterator starts, see the module docstring). ``__len__`` is the number
    of indices the epoch yields: exact after the epoch was drawn, a preview (the
    policy asked now) before.
    """

    def __init__(
        self,
        policy: TrainingPolicy,
        *,
        shuffle: bool | None = None,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
    ) -> None:
        self.policy = policy
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = int(epoch)
        self._drawn: tuple[int, int] | None = None  # (epoch, number of indices) last drawn
        self.seconds = 0.0  # spent in the policy's draws (its bookkeeping overhead)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        started = time.perf_counter()
        order = self.policy.order(
            self.epoch, shuffle=self.shuffle, rank=self.rank, world_size=self.world_size
        )
        self.seconds += time.perf_counter() - started
        return order

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        self._drawn = (self.epoch, len(order))
        return iter(order.tolist())

    def __len__(self) -> int:
        if self._drawn is not None and self._drawn[0] == self.epoch:
            return self._drawn[1]
        return len(self._order())


class _IssuedBatches(BatchSampler):
    """Batches of one epoch of a :class:`PolicySampler`, remembering each one it issues.

    Torch delivers a map-style dataset's batches in the order the batch sampler issued
    them (``in_order=True``), workers or not, so the loader pairs every batch it yields
    with the oldest issued index batch. ``drop_last`` follows Ultralytics' rule per
    epoch: drop a partial last batch only when there is more than one batch.
    """

    def __init__(self, sampler: PolicySampler, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last=False)
        self.drop_partial = bool(drop_last)
        self.issued: deque[list[int]] = deque()

    def _drop(self, n: int) -> bool:
        return self.drop_partial and n > self.batch_size and n % self.batch_size != 0

    def __iter__(self) -> Iterator[list[int]]:
        order = list(iter(self.sampler))  # one draw per epoch, at iteration time
        stop = len(order) // self.batch_size * self.batch_size if self._drop(len(order)) else None
        order = order[:stop]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            self.issued.append(batch)
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self._drop(n) else math.ceil(n / self.batch_size)


class PolicyDataLoader(DataLoader):
    """A train loader whose every iteration is one epoch the policy drew at that moment.

    Built by :meth:`MeteredTrainer.get_dataloader`; offers what Ultralytics' trainer
    uses of its ``InfiniteDataLoader`` (``sampler``, ``batch_size``, ``drop_last``,
    ``num_workers``, ``reset``, ``close``). ``len()`` is the nominal batch count (an
    epoch over the whole split, see the module docstring); :attr:`epoch_batches` is
    that of the epoch at hand. Each batch gains :data:`INDEX_KEY`, the dataset indices
    of its images, checked against its ``im_file``.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        sampler: PolicySampler,
        batch_size: int,
        drop_last: bool,
        nominal_batches: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kwargs
        )
        # DataLoader forbids setting batch_sampler after __init__; Ultralytics' loader does the same.
        object.__setattr__(self, "batch_sampler", _IssuedBatches(sampler, batch_size, drop_last))
        self.nominal_batches = int(nominal_batches)

    def __len__(self) -> int:
        return self.nominal_batches

    @property
    def epoch_batches(self) -> int:
        """Batches the current epoch yields (a preview before it is drawn)."""
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[dict]:
        return self._one_epoch()

    def _one_epoch(self) -> Iterator[dict]:
        issued = self.batch_sampler.issued
        issued.clear()  # leftovers of an epoch cut short: torch drains its batches on reset
        files = self.dataset.im_files
        for batch in super().__iter__():
            index = issued.popleft()
            if list(batch["im_file"]) != [files[i] for i in index]:
                raise RuntimeError(
                    "PolicyDataLoader: a batch does not hold the images its sampler issued "
                    f"(expected {[files[i] for i in index][:3]}..., got {list(batch['im_file'])[:3]}...)"
                )
            batch[INDEX_KEY] = np.asarray(index, dtype=np.int64)
            yield batch

    def close(self) -> None:
        """Shut down the persistent workers (Ultralytics calls it at the end and on OOM retry)."""
        iterator = self._iterator
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    def reset(self) -> None:
        """Drop the iterator, so new workers see dataset changes (Ultralytics' close_mosaic)."""
        self.close()
        self._iterator = None


class MeteredTrainer(DetectionTrainer):
    """DetectionTrainer without in-training validation, counting batches, images and steps.

    ``policy`` (a class attribute: Ultralytics instantiates the trainer class itself, so
    :func:`make_trainer` sets it on a subclass) decides what each epoch forwards;
    None means :class:`~detreduce.train.policy.FullPolicy`. Counted here:
    ``iterations``, ``images_seen``, ``optimizer_steps``, ``epochs_run``, and per image
    index ``image_counts`` (times forwarded) and per epoch ``forwarded_per_epoch``;
    ``batch_indices`` holds the dataset indices of the batch being trained on.
    """

    policy: TrainingPolicy | None = None
    #: The ``converge`` budget's rule (None: no in-training validation), set by make_trainer.
    convergence: Convergence | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if type(self).convergence is not None:  # a fresh curve per trainer
            c = type(self).convergence
            self.convergence = Convergence(patience=c.patience, val_every=c.val_every)
        self.seconds_validation = 0.0
        self.policy = as_policy(type(self).policy)
        self.per_image_loss: Any = None  # the criterion, when the policy reads losses
        self.seconds_policy = 0.0  # the policy's own bookkeeping (observe, weights, draws)
        self.iterations = 0
        self.images_seen = 0
        self.optimizer_steps = 0
        self.epochs_run = 0
        self.forwarded_per_epoch: list[int] = []
        self.image_counts = np.zeros(0, dtype=np.int64)
        self.batch_indices = np.zeros(0, dtype=np.int64)
        self.policy_sampler: PolicySampler | None = None
        self._policy_images = -1  # split size the policy was set up for by this trainer
        # Fitness stays None (no validation) and never equals -inf: best.pt is never written.
        self.best_fitness = float("-inf")

    def get_dataloader(
        self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"
    ) -> Any:
        """The val loader as Ultralytics builds it; the train loader under the policy.

        Same dataset, batch size, worker count, pin-memory rule and worker seeding as
        ``DetectionTrainer.get_dataloader`` + ``build_dataloader``
        (``ultralytics/data/build.py:349-417``); the order comes from the policy.
        """
        if mode != "train":
            return super().get_dataloader(dataset_path, batch_size, rank, mode)
        with torch_distributed_zero_first(rank):  # init dataset *.cache only once if DDP
            dataset = self.build_dataset(dataset_path, mode, batch_size)
        n = len(dataset)
        shuffle = None  # the policy's own choice
        shapes = getattr(dataset, "batch_shapes", None)
        if getattr(dataset, "rect", False) and not np.all(shapes == shapes[0]):
            # rect batches need consecutive indices, as Ultralytics' own shuffle=False fallback
            if type(self.policy) is not FullPolicy:
                raise ConfigError(
                    f"rect=True training needs every image in order; policy {self.policy.name!r} "
                    "chooses images per epoch (train without rect)"
                )
            LOGGER.warning(
                "'rect=True' is incompatible with DataLoader shuffle, setting shuffle=False"
            )
            shuffle = False
        if self._policy_images != n:  # once per run, not again when Ultralytics rebuilds (OOM)
            self.policy.setup(n, self.epochs, self.args.seed)
            self._policy_images = n
        # which file each dataset index is (Ultralytics sorts train.txt's lines)
        self.policy.image_files_ = list(dataset.im_files)
        world, shard = (dist.get_world_size(), dist.get_rank()) if rank != -1 else (1, 0)
        if world > 1 and self.policy.needs_losses:
            raise ConfigError(
                f"policy {self.policy.name!r} reads per-image losses, which detreduce keeps in "
                "one process: train it on one device (not DDP)"
            )
        sampler = PolicySampler(
            self.policy, shuffle=shuffle, rank=shard, world_size=world, epoch=self.start_epoch
        )
        # build_dataloader's rules, for the full split (build.py:380-400)
        batch = min(batch_size, n)
        samples = math.ceil(n / world)
        drop_last = bool(self.args.compile) and samples > batch > 0 and samples % batch != 0
        nominal = samples // batch if drop_last else math.ceil(samples / batch)
        device_type = self.device.type
        nd = (
            get_torch_device_backend(self.device).device_count()
            if device_type not in {"cpu", "mps"}
            else 0
        )
        nw = min(os.cpu_count() // max(nd, 1), self.args.workers, 0 if nominal <= 1 else nominal)
        generator = torch.Generator()  # worker seeds, as Ultralytics draws them
        seed = torch.initial_seed() - RANK - 1
        generator.manual_seed((6148914691236517205 + RANK + seed) % (1 << 64))
        loader = PolicyDataLoader(
            dataset,
            sampler=sampler,
            batch_size=batch,
            drop_last=drop_last,
            nominal_batches=nominal,
            num_workers=nw,
            persistent_workers=nw > 0,
            prefetch_factor=4 if nw > 0 else None,
            pin_memory=nd > 0,
            collate_fn=getattr(dataset, "collate_fn", None),
            worker_init_fn=seed_worker,
            generator=generator,
        )
        self.policy_sampler = sampler
        if len(self.image_counts) != n:
            self.image_counts = np.zeros(n, dtype=np.int64)
        return loader

    def preprocess_batch(self, batch: dict) -> dict:
        """Count every training batch and its images (called once per training batch);
        put the policy's per-image loss weights on the batch for the criterion."""
        self.iterations += 1
        self.images_seen += len(batch["im_file"])
        index = batch.get(INDEX_KEY)
        weights = None
        if index is not None:
            self.batch_indices = index
            np.add.at(self.image_counts, index, 1)
            epoch = int(getattr(self, "epoch", 0))  # unset before the loop (QAT calibration)
            if len(self.forwarded_per_epoch) <= epoch:
                self.forwarded_per_epoch.extend([0] * (epoch + 1 - len(self.forwarded_per_epoch)))
            self.forwarded_per_epoch[epoch] += len(index)
            started = time.perf_counter()
            weights = self.policy.loss_weights(index)
            self.seconds_policy += time.perf_counter() - started
        batch = super().preprocess_batch(batch)
        if weights is not None:
            if self.per_image_loss is None:
                raise ConfigError(
                    f"policy {self.policy.name!r} returned loss weights but does not declare "
                    "needs_losses; the trainer has no per-image loss to apply them to"
                )
            from detreduce.train.loss import WEIGHTS_KEY

            batch[WEIGHTS_KEY] = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        return batch

    def _setup_train(self) -> None:
        """Ultralytics' setup; then, for a policy that reads losses, the per-image criterion
        (:mod:`detreduce.train.loss`) on the model being trained (after resume and EMA)."""
        super()._setup_train()
        if self.policy.needs_losses:
            from detreduce.train.loss import attach_per_image_loss

            self.per_image_loss = attach_per_image_loss(self.model)

    def optimizer_step(self) -> None:
        """Count optimizer steps (Ultralytics accumulates gradients up to a batch of 64)."""
        super().optimizer_step()
        self.optimizer_steps += 1

    def run_callbacks(self, event: str) -> None:
        """Tell the sampler the epoch before it starts; count finished epochs; run callbacks."""
        if event == "on_train_epoch_start" and self.policy_sampler is not None:
            self.policy_sampler.set_epoch(self.epoch)
        if event == "on_train_batch_end" and self.per_image_loss is not None:
            self._observe_batch()
        if event == "on_train_epoch_end":
            self.epochs_run += 1
        super().run_callbacks(event)

    def _observe_batch(self) -> None:
        """Hand the policy the batch's per-image losses (detached, unweighted)."""
        from detreduce.train.loss import per_image_loss_items

        per_image = getattr(self.per_image_loss, "last_per_image", None)
        if per_image is None:
            return
        started = time.perf_counter()
        self.policy.observe(self.batch_indices, per_image_loss_items(per_image))
        self.seconds_policy += time.perf_counter() - started

    @property
    def policy_report(self) -> dict[str, Any]:
        """The policy's report plus what this trainer counted as forwarded."""
        counts = self.image_counts
        return {
            **self.policy.report(),
            "n_images": int(len(counts)),
            "forwarded_per_epoch": [int(c) for c in self.forwarded_per_epoch],
            "forwarded_total": int(counts.sum()),
            "distinct_forwarded": int(np.count_nonzero(counts)),
            "per_image_min": int(counts.min()) if len(counts) else 0,
            "per_image_max": int(counts.max()) if len(counts) else 0,
            "seconds_policy": float(self.seconds_policy)
            + float(self.policy_sampler.seconds if self.policy_sampler is not None else 0.0),
        }

    def validate(self) -> tuple[dict, float | None]:
        """Skip validation (no metrics, no fitness) unless the run trains to convergence.

        Under the ``converge`` budget (:attr:`convergence` set, Ultralytics' ``val=True``)
        validate on the rule's epochs only, time it apart from training, add the point
        to the curve and stop on a plateau (:mod:`detreduce.train.convergence`). The
        final weights are still what detreduce validates and reports (not ``best.pt``).
        """
        rule = self.convergence
        epoch = int(self.epoch) + 1
        if rule is None or not rule.due(epoch, final=epoch >= self.epochs):
            return self.metrics, None
        started = time.time()
        metrics, fitness = super().validate()
        self.seconds_validation += time.time() - started
        rule.record(
            CurvePoint(
                epoch=epoch,
                map50=float(metrics.get("metrics/mAP50(B)", float("nan"))),
                map50_95=float(metrics.get("metrics/mAP50-95(B)", float("nan"))),
                seconds_training=time.time() - self.train_time_start - self.seconds_validation,
                seconds_validation=self.seconds_validation,
            )
        )
        if rule.plateaued():
            self.stop = True
        return metrics, fitness

    def final_eval(self) -> None:
        """Strip the optimizer from ``last.pt``; the validation is detreduce's own phase."""
        if self.last.exists():
            strip_optimizer(self.last)


def make_trainer(
    policy: TrainingPolicy | None = None, convergence: Convergence | None = None
) -> type[MeteredTrainer]:
    """A :class:`MeteredTrainer` subclass bound to ``policy`` (and, for the ``converge``
    budget, its ``convergence`` rule), for ``model.train(trainer=...)``.

    Ultralytics instantiates the class itself, so the policy travels as a class
    attribute (the class is cloudpickled by value for DDP workers).
    """
    policy = as_policy(policy)
    return type(
        f"MeteredTrainer_{policy.name or type(policy).__name__}",
        (MeteredTrainer,),
        {"policy": policy, "convergence": convergence, "__module__": __name__},
    )
