"""The converge budget's rule (validate every k epochs, stop on a plateau) and time-to-accuracy."""

from __future__ import annotations

import pytest

from detreduce.errors import ConfigError
from detreduce.train.convergence import Convergence, CurvePoint, time_to_accuracy


def _run(maps, patience, val_every=1):
    """Feed a convergence rule one mAP per validated epoch; return the epoch it stops at."""
    rule = Convergence(patience=patience, val_every=val_every)
    epoch = 0
    for m in maps:
        epoch += val_every
        rule.record(CurvePoint(epoch, m, m, 10.0 * epoch, 1.0 * epoch // val_every))
        if rule.plateaued():
            return epoch, rule
    return None, rule


@pytest.mark.parametrize(
    ("maps", "patience", "val_every", "stop"),
    [
        ([0.1, 0.2, 0.3, 0.3, 0.3], 2, 1, 5),  # best at 3, two epochs without a gain
        ([0.1, 0.2, 0.3, 0.31, 0.32], 2, 1, None),  # still improving
        ([0.3, 0.2, 0.1], 2, 1, 3),  # best at 1
        ([0.1, 0.5, 0.4, 0.4], 4, 2, 8),  # validated at 2, 4, 6, 8: best at 4, 8 − 4 = 4
        ([0.1, 0.5, 0.4], 4, 2, None),  # 6 − 4 < 4
    ],
)
def test_plateau_rule(maps, patience, val_every, stop):
    assert _run(maps, patience, val_every)[0] == stop


def test_due_every_k_epochs_and_the_last():
    rule = Convergence(patience=3, val_every=3)
    assert [e for e in range(1, 11) if rule.due(e, final=e == 10)] == [3, 6, 9, 10]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_patience_or_val_every_raise(bad):
    with pytest.raises(ConfigError, match="patience"):
        Convergence(patience=bad)
    with pytest.raises(ConfigError, match="val_every"):
        Convergence(patience=2, val_every=bad)


def test_curve_shares_the_phase_energy_by_seconds_and_time_to_accuracy_reads_it():
    rule = Convergence(patience=5)
    for epoch, m in ((1, 0.10), (2, 0.30), (3, 0.40), (4, 0.41)):
        rule.record(CurvePoint(epoch, m, m, 9.0 * epoch, 1.0 * epoch))  # 10 s per epoch
    curve = rule.curve(kwh_phase=0.004)
    assert [p["kwh"] for p in curve] == pytest.approx([0.001, 0.002, 0.003, 0.004])
    tta = time_to_accuracy(curve, target=0.42)
    # 0.9 × 0.42 = 0.378 → epoch 3; 0.95 → 0.399 → 3; 0.97 → 0.4074 → 4; 0.99 → 0.4158 → never
    assert tta["90"] == {"epoch": 3, "kwh": pytest.approx(0.003), "seconds": 30.0}
    assert tta["95"]["epoch"] == 3 and tta["97"]["epoch"] == 4 and tta["99"] is None
    assert all(v is None for v in time_to_accuracy(curve, target=0.0).values())
