"""Training to convergence: validate every few epochs, stop on a plateau, keep the curve.

The ``converge`` budget answers "does the reduced run get to the same accuracy, and at
what cost?": a run trains until val mAP50-95 has not improved for ``patience`` epochs
(or ``max_epochs`` is reached), validating every ``val_every`` epochs. Every validation
adds one point to the run's curve: epoch, mAP50, mAP50-95, and the cumulative seconds
of training and of in-training validation. Validation time is counted apart from
training time and its energy is reported, never hidden in the training figure.

Energy per point: codecarbon meters the training phase (which holds the in-training
validations) as a whole, so the cumulative kWh at a point is the phase's kWh times the
point's share of the phase's training + validation seconds (:meth:`Convergence.curve`). Under codecarbon's ``cpu_load`` mode (no RAPL) power is
estimated from load and nearly constant, so this is close to exact; on a metered GPU it
is a time-proportional estimate, and the result says which mode measured the phase.

:func:`time_to_accuracy` reads a curve: the first point that reaches a share of a
target mAP50-95 (the full-data run's final mAP), with its cumulative kWh and seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from detreduce.errors import ConfigError

#: Shares of the full-data mAP50-95 that time-to-accuracy reports.
TTA_LEVELS = (0.90, 0.95, 0.97, 0.99)


@dataclass(frozen=True)
class CurvePoint:
    """One validation during training (cumulative figures up to the end of ``epoch``)."""

    epoch: int
    map50: float
    map50_95: float
    seconds_training: float
    seconds_validation: float
    kwh: float | None = None


@dataclass
class Convergence:
    """When to validate and when to stop, and the curve so far.

    Attributes:
        patience: stop when the best mAP50-95 is this many epochs old (None: never
            stop, only record the curve, as ``epochs``/``steps`` runs with ``val_every``).
        val_every: validate after every ``val_every``-th epoch (and the last one).
        points: the curve, one :class:`CurvePoint` per validation.
    """

    patience: int | None
    val_every: int = 1
    points: list[CurvePoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("patience", "val_every"):
            value = getattr(self, name)
            if name == "patience" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"train.{name}: expected an integer >= 1, got {value!r}")

    def due(self, epoch: int, final: bool) -> bool:
        """Validate after ``epoch`` (1-based)? Every ``val_every`` epochs and the last."""
        return final or epoch % self.val_every == 0

    def record(self, point: CurvePoint) -> None:
        self.points.append(point)

    @property
    def best(self) -> CurvePoint | None:
        """The first point with the highest mAP50-95 (ties: the earlier, cheaper one)."""
        return max(self.points, key=lambda p: (p.map50_95, -p.epoch), default=None)

    def plateaued(self) -> bool:
        """True once the best mAP50-95 is at least ``patience`` epochs older than the last point."""
        best = self.best
        if self.patience is None or best is None:
            return False
        return self.points[-1].epoch - best.epoch >= self.patience

    def curve(self, kwh_phase: float | None = None) -> list[dict[str, Any]]:
        """The points as dicts; given the training phase's kWh, each point's cumulative
        share of it by training + validation seconds (module docstring)."""
        last = self.points[-1] if self.points else None
        total = last.seconds_training + last.seconds_validation if last else 0.0
        out = []
        for p in self.points:
            share = (p.seconds_training + p.seconds_validation) / total if total > 0 else 0.0
            kwh = None if kwh_phase is None else float(kwh_phase) * share
            out.append(asdict(p) | {"kwh": kwh})
        return out


def time_to_accuracy(
    curve: Sequence[dict[str, Any]], target: float, levels: Sequence[float] = TTA_LEVELS
) -> dict[str, dict[str, Any] | None]:
    """Per level ``l``: the first curve point with mAP50-95 ≥ ``l × target`` — its epoch,
    cumulative kWh and seconds (training + in-training validation) — or None ("never"). ``target`` is the full-data run's final mAP50-95 (same seed). O(points).
    """
    out: dict[str, dict[str, Any] | None] = {}
    for level in levels:
        hit = next((p for p in curve if p["map50_95"] >= level * target), None)
        out[f"{round(100 * level)}"] = (
            None
            if hit is None or not target > 0
            else {
                "epoch": int(hit["epoch"]),
                "kwh": hit.get("kwh"),
                "seconds": float(hit["seconds_training"]) + float(hit["seconds_validation"]),
            }
        )
    return out
