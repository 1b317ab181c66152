"""Training policies: what each epoch of YOLO training forwards (method kind ``training``).

A static reduction (kind ``embedding`` / ``dataset``) picks a subset once and exports it;
a training policy trains on a split and decides, epoch by epoch, which of its images
the trainer forwards, and (later) how much each image's loss counts. Dynamic data
pruning lands here: InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by
Unbiased Dynamic Data Pruning", ICLR 2024) and CREST (Yang et al., "Towards Sustainable
Learning: Coresets for Data-efficient Deep Learning", ICML 2023). This module lands the
seam with the trivial ``full`` policy, the control arm every other policy is compared
with.

The contract (hooks the trainer calls, in this order):

- :meth:`TrainingPolicy.setup` once the train split is known: ``n_images``, ``epochs``,
  ``seed``.
- :meth:`TrainingPolicy.epoch_indices` each epoch, when the epoch's sampler is iterated
  (never earlier, so prefetching cannot serve a stale subset; the mechanism is in
  :mod:`detreduce.train.trainer`). ``None`` means every image. It may be asked more
  than once for the same epoch (a length preview, an epoch Ultralytics redoes): give
  the same answer for the same epoch and state, e.g. draw randomness from
  ``np.random.default_rng([self.seed_, epoch])``, never from a global RNG.
- :meth:`TrainingPolicy.loss_weights` for every forwarded batch (the criterion
  multiplies each image's loss by its weight); :meth:`observe` after the batch's
  backward pass, with each image's detached, unweighted loss. A policy that overrides
  either one :attr:`~TrainingPolicy.needs_losses`: the trainer then swaps Ultralytics'
  criterion for the per-image one of :mod:`detreduce.train.loss` (autograd intact).
- :meth:`TrainingPolicy.report` after training: what the policy scheduled. The trainer
  adds what it counted as actually forwarded (``MeteredTrainer.policy_report``).

:meth:`TrainingPolicy.order` (not a hook) turns an epoch's answer into the sampler's
order: validated, shuffled with ``np.random.default_rng([seed, epoch])`` (deterministic,
the same whatever ran before: resume, rebuilt loaders; seeding with the pair, not
``seed + epoch``, keeps seed 1 epoch 0 apart from seed 0 epoch 1), then sharded per rank
like ``torch.utils.data.DistributedSampler``.

Importing this module imports numpy only (no torch, no Ultralytics): the method catalog
and the CLI can list policies cheaply.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from detreduce.errors import ConfigError


class TrainingPolicy:
    """Base class of training policies: every hook does nothing (every image, weight 1).

    Subclasses set ``name`` (and ``summary``, ``reference``), take explicit keyword
    parameters in ``__init__`` and store them untouched (scikit-learn style: checked in
    :meth:`_check`, called by :meth:`setup`), and override the hooks they need. State
    learned during training ends in ``_``.

    ``shuffle``: the sampler shuffles the epoch's indices (seeded by ``(seed, epoch)``);
    a policy that returns them in the order they must be forwarded sets it to False.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    #: What the policy is when it is a baseline, for reports ("" otherwise).
    baseline: ClassVar[str] = ""
    #: Catalog traits: a policy reads no embeddings (it may later read its own losses)
    #: and runs on the whole split, so class balance does not apply to it.
    uses_features: ClassVar[bool] = False
    balanced: ClassVar[bool] = False
    shuffle: ClassVar[bool] = True

    @property
    def needs_losses(self) -> bool:
        """Does the policy read or weight per-image losses (overrides observe or loss_weights)?"""
        cls = type(self)
        return (
            cls.observe is not TrainingPolicy.observe
            or cls.loss_weights is not TrainingPolicy.loss_weights
        )

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` keyword parameters and their current values."""
        return {p: getattr(self, p) for p in _param_names(type(self))}

    def _check(self) -> None:
        """Validate the parameters (raise ``ConfigError`` naming parameter, expected, got)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ hooks
    def setup(self, n_images: int, epochs: int, seed: int) -> None:
        """Start a training run on ``n_images`` images for ``epochs`` epochs.

        Resets what a previous run learned. Subclasses that override it call
        ``super().setup(...)`` first.
        """
        if int(n_images) < 1 or int(epochs) < 1:
            raise ConfigError(
                f"policy {self.name!r}: need n_images >= 1 and epochs >= 1, "
                f"got n_images={n_images}, epochs={epochs}"
            )
        self._check()
        self.n_images_ = int(n_images)
        self.epochs_ = int(epochs)
        self.seed_ = int(seed)
        self.scheduled_: dict[int, int] = {}

    def epoch_indices(self, epoch: int) -> np.ndarray | None:
        """Dataset indices epoch ``epoch`` (0-based) forwards; None: every image.

        Integer indices in ``[0, n_images)`` (repeats forward an image more than once)
        or a boolean mask of length ``n_images``. Shuffled by the sampler unless
        ``shuffle`` is False. Called when the epoch's sampler is iterated.
        """
        return None

    def loss_weights(self, indices: np.ndarray) -> np.ndarray | None:
        """Per-image loss weights for a forwarded batch (its dataset indices); None: all 1.

        Applied by the per-image criterion (:mod:`detreduce.train.loss`):
        ``B * sum_i w_i * loss_i`` with the batch-wide normaliser.
        """
        return None

    def observe(self, indices: np.ndarray, per_image_loss: np.ndarray) -> None:
        """Learn from a forwarded batch: its dataset indices and per-image losses.

        ``per_image_loss[k]`` is image ``indices[k]``'s box + cls + DFL loss (the
        stock loss's scale: their batch mean is the batch loss), detached, unweighted.
        Under mosaic it is the composite sample's loss, attributed to the indexed image.
        """

    def report(self) -> dict[str, Any]:
        """What the policy did: its name, parameters and images scheduled per epoch.

        ``scheduled_per_epoch[e]`` is what epoch ``e``'s answer contained (before
        sharding across ranks); the trainer's counts say what was really forwarded.
        """
        scheduled = getattr(self, "scheduled_", {})
        per_epoch = [int(scheduled.get(e, 0)) for e in range(max(scheduled, default=-1) + 1)]
        return {
            "name": self.name,
            "params": {k: _plain(v) for k, v in self.get_params().items()},
            "scheduled_per_epoch": per_epoch,
            "scheduled_total": int(sum(per_epoch)),
        }

    # ------------------------------------------------------------------ the sampler's order
    def order(
        self, epoch: int, *, shuffle: bool | None = None, rank: int = 0, world_size: int = 1
    ) -> np.ndarray:
        """The dataset indices the sampler yields in epoch ``epoch``, in yield order.

        Asks :meth:`epoch_indices`, validates its answer, records it in ``scheduled_``,
        shuffles it (``shuffle`` None: the policy's ``shuffle``) with
        ``default_rng([seed, epoch])``, and for ``world_size > 1`` pads it by repetition
        to a multiple of ``world_size`` and keeps every ``world_size``-th index from
        ``rank`` (as ``DistributedSampler`` does, so ranks stay in step). O(n).
        """
        if not hasattr(self, "n_images_"):
            raise RuntimeError(f"policy {self.name!r}: setup() must run before order()")
        epoch = int(epoch)
        idx = self._validated(self.epoch_indices(epoch), epoch)
        self.scheduled_[epoch] = len(idx)
        if self.shuffle if shuffle is None else shuffle:
            rng = np.random.default_rng([self.seed_ % (1 << 64), epoch])
            idx = idx[rng.permutation(len(idx))]
        if world_size > 1:
            total = -(-len(idx) // world_size) * world_size
            idx = np.resize(idx, total)[rank::world_size]
        return idx

    def _validated(self, chosen: Any, epoch: int) -> np.ndarray:
        n = self.n_images_
        if chosen is None:
            return np.arange(n, dtype=np.int64)
        arr = np.asarray(chosen)
        where = f"policy {self.name!r}, epoch {epoch}: epoch_indices"
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ConfigError(f"{where} gave a mask of shape {arr.shape}, expected ({n},)")
            arr = np.flatnonzero(arr)
        elif arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ConfigError(
                f"{where} must give a 1-D array of integer indices or a boolean mask, "
                f"got dtype {arr.dtype} and shape {arr.shape}"
            )
        if arr.size == 0:
            raise ConfigError(f"{where} gave no images; an epoch must forward at least one")
        if arr.min() < 0 or arr.max() >= n:
            raise ConfigError(
                f"{where} gave indices in [{arr.min()}, {arr.max()}], expected [0, {n - 1}]"
            )
        return arr.astype(np.int64, copy=True)


class FullPolicy(TrainingPolicy):
    """Every image, every epoch, shuffled: plain training, the control arm of every policy."""

    name = "full"
    summary = "every image every epoch (plain training; the control arm of training policies)"
    baseline = "all train images"
    reference = (
        "plain Ultralytics training: ultralytics/engine/trainer.py BaseTrainer._do_train (8.4)"
    )


def _policies() -> dict[str, type[TrainingPolicy]]:
    from detreduce.train.crest import CrestPolicy
    from detreduce.train.infobatch import InfoBatchPolicy

    return {"full": FullPolicy, "infobatch": InfoBatchPolicy, "crest": CrestPolicy}


def _param_names(cls: type) -> list[str]:
    """Names of the explicit parameters of ``cls.__init__`` (no ``self``, ``*args``, ``**kw``)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.kind in named]


def _plain(value: Any) -> Any:
    """A JSON-able copy of a parameter value (reports land in result.json and results.csv)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else str(value)


def get_policy(name: str, **params: Any) -> TrainingPolicy:
    """Create a registered policy by name (the method catalog's ``training`` kind).

    Unknown names and parameters fail with suggestions; values are checked now.
    """
    from detreduce.methods import catalog

    return catalog.get_method(name, kind="training").create(**params)


def as_policy(policy: TrainingPolicy | None) -> TrainingPolicy:
    """``policy``, checked; None becomes :class:`FullPolicy` (every run goes through the seam)."""
    if policy is None:
        return FullPolicy()
    if not isinstance(policy, TrainingPolicy):
        raise ConfigError(
            f"policy must be a TrainingPolicy (e.g. get_policy('full')) or None, "
            f"got {type(policy).__name__}"
        )
    policy._check()
    return policy


def _register_in_catalog() -> None:
    """Add every policy to the method catalog as kind ``training`` (cheap: no ultralytics)."""
    from detreduce.methods import catalog

    for cls in POLICIES.values():
        catalog.register(catalog.MethodSpec.from_class(cls, "training"))


POLICIES: dict[str, type[TrainingPolicy]] = _policies()
_register_in_catalog()
