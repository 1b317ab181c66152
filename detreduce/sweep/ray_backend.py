"""Sweep trials as Ray tasks, on this machine or an existing Ray cluster.

Each trial is one Ray task running the picklable :class:`~detreduce.sweep.runner.TrialRunner`
with declared resources (``cpus_per_trial``, ``gpus_per_trial``); the driver collects
records with ``ray.wait`` as they finish and alone appends them to the results store,
so resume, failure rows and reports are those of the local backend.

Energy: each trial meters itself inside its own worker process (codecarbon's
``process`` tracking mode, the default), so parallel trials never count each other's
power; a trial's kWh is its process's, as on one machine.

Failure policy: a trial that raises is a ``failed`` row (the runner's own handling); a
worker that dies mid-trial (killed, out of memory, node lost) becomes a ``failed`` row
with Ray's one-line reason, never a lost or a duplicated one. Ray does not retry the task
(``max_retries=0``: a retried training would run twice with no record of the first); a
rerun of the sweep retries failed rows (``sweep.retry_failed``).

Shared paths: workers read the dataset path, the sweep folder (embeddings, proxy losses,
trial outputs) and detreduce's cache root as the driver names them, so on a multi-node
cluster those must be on a shared filesystem; the runner ships only paths and settings.
A task first checks that it sees the dataset and the sweep folder and fails with the
node's address otherwise.

Ray is imported only when this backend runs (``pip install ray`` or ``detreduce[ray]``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detreduce.errors import ConfigError
from detreduce.sweep.grid import TrialSpec
from detreduce.sweep.record import RunRecord


def _run_trial(runner: Any, spec: TrialSpec) -> RunRecord:
    """The task body: check the shared paths, then run the trial in this worker."""
    for what, path in (("dataset", runner.data), ("sweep folder", runner.out)):
        if not Path(path).exists():
            raise ConfigError(
                f"Ray worker on {socket.gethostname()} cannot see the {what} {path}: "
                "put it on a filesystem every node mounts at the same path"
            )
    return runner(spec)


@dataclass
class RayBackend:
    """Trials as Ray tasks (see the module docstring).

    Attributes:
        address: ``None`` starts (or joins) a Ray instance on this machine; ``auto`` or
            ``HOST:PORT`` joins an existing cluster.
        cpus_per_trial, gpus_per_trial: resources Ray reserves for each trial (so at most
            cluster CPUs / cpus_per_trial trials run at once).
    """

    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    name: str = "ray"

    def _init(self) -> Any:
        from detreduce.raycluster import connect

        return connect(self.address)

    def run(
        self,
        trials: Sequence[TrialSpec],
        runner: Callable[[TrialSpec], RunRecord],
        on_start: Callable[[TrialSpec], None] | None = None,
    ) -> Iterator[RunRecord]:
        """Submit every trial, yield records as they finish (in any order)."""
        if not trials:
            return
        ray = self._init()
        task = ray.remote(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=0
        )(_run_trial)
        pending: dict[Any, TrialSpec] = {}
        for spec in trials:
            pending[task.remote(runner, spec)] = spec
            if on_start is not None:
                on_start(spec)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker is a failed row
                    yield _failed(runner, spec, exc)


def _failed(runner: Any, spec: TrialSpec, exc: BaseException) -> RunRecord:
    """The row of a trial whose worker died or whose task could not run."""
    from detreduce.sweep.runner import _now, one_line

    base = runner._base_row(spec) if hasattr(runner, "_base_row") else None
    cause = getattr(exc, "cause", None)  # RayTaskError wraps what the task raised
    error = f"Ray task failed: {one_line(cause if isinstance(cause, BaseException) else exc)}"
    if base is None:
        return RunRecord(run_id=spec.run_id, method=spec.method, fraction=spec.fraction,
                         seed=spec.seed, status="failed", error=error)  # fmt: skip
    return replace(base, status="failed", error=error, finished_at=_now())
