"""Training budget policy: how many epochs a run on a reduced split gets.

Two protocols answer two questions, and a number means little without its protocol:

- ``epochs`` (default): every run trains the same number of epochs, so a run on a
  fraction f of the data takes about f times the optimizer steps, time and energy.
  This is the energy-saving use: "train on less, pay less".
- ``steps``: a reduced run trains ``epochs / f`` epochs (capped at
  ``max_epoch_scale x epochs``), so runs see about the same number of optimizer steps
  and the comparison isolates data quality from compute. When the cap binds, steps are
  no longer equal and ``capped`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from detreduce.errors import ConfigError

BUDGETS = ("epochs", "steps")


@dataclass(frozen=True)
class EpochPlan:
    """Epochs a run trains under a budget policy, and how they were derived."""

    budget: str
    base_epochs: int
    fraction: float
    scale: float
    epochs: int
    capped: bool


def plan_epochs(
    epochs: int, *, budget: str = "epochs", fraction: float = 1.0, max_epoch_scale: float = 4.0
) -> EpochPlan:
    """Epochs to train: ``epochs`` (budget='epochs') or ``round(epochs / fraction)`` capped.

    >>> plan_epochs(10, budget="steps", fraction=0.5).epochs
    20
    >>> plan_epochs(10, budget="steps", fraction=0.1, max_epoch_scale=4).epochs
    40
    """
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {BUDGETS}, got {budget!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(
            f"fraction must be in (0, 1] (share of the full train set), got {fraction}"
        )
    if max_epoch_scale < 1.0:
        raise ConfigError(f"max_epoch_scale must be >= 1, got {max_epoch_scale}")
    if budget == "epochs":
        return EpochPlan(budget, epochs, float(fraction), 1.0, epochs, False)
    wanted = 1.0 / fraction
    scale = min(wanted, float(max_epoch_scale))
    return EpochPlan(
        budget=budget,
        base_epochs=epochs,
        fraction=float(fraction),
        scale=scale,
        epochs=max(1, round(epochs * scale)),
        capped=wanted > max_epoch_scale,
    )
