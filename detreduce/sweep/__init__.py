"""Sweeps over methods × fractions × seeds: grid, results store, trial runner, orchestration."""

from detreduce.sweep.grid import FULL, RANDOM, Protocol, TrialSpec, build_grid
from detreduce.sweep.record import RunRecord, SelectionSummary
from detreduce.sweep.runner import LocalBackend, TrialRunner, get_backend
from detreduce.sweep.store import ResultsStore, read_results
from detreduce.sweep.sweep import SweepEvent, SweepResult, run_sweep

__all__ = [
    "FULL",
    "RANDOM",
    "LocalBackend",
    "Protocol",
    "ResultsStore",
    "RunRecord",
    "SelectionSummary",
    "SweepEvent",
    "SweepResult",
    "TrialRunner",
    "TrialSpec",
    "build_grid",
    "get_backend",
    "read_results",
    "run_sweep",
]
