"""Torch CPU threads and train-loader workers for a training run: the rule, and applying it.

What Ultralytics does (8.4.190, read from the installed package):

- ``NUM_THREADS = min(8, max(1, os.cpu_count() - 1))`` (``ultralytics/utils/__init__.py:78``),
  and ``select_device`` calls ``torch.set_num_threads(NUM_THREADS)`` for ``cpu`` and ``mps``
  (``ultralytics/utils/torch_utils.py:363-364``): one thread on a 2-core machine, where
  the other core then idles through every forward and backward pass.
- ``select_device`` runs in ``BaseTrainer.__init__`` (``engine/trainer.py:153``), just
  before the ``on_pretrain_routine_start`` callbacks (trainer.py:197), and in a
  standalone validator (``engine/validator.py:191``), before ``on_val_start``
  (validator.py:245). Nothing else sets the thread count during training or validation
  (the in-training validator of the ``converge`` budget is called with the trainer and
  reuses its device, without ``select_device``). Loader workers set 1 thread in their
  own processes (torch's ``_worker_loop``), leaving the main process's count alone.
- Loader workers: ``BaseTrainer.__init__`` sets ``args.workers = 0`` for CPU and MPS
  training (trainer.py:178-179), before ``on_pretrain_routine_start``, whatever the user
  asked; the loaders then use ``min(cpu_count, workers, batches)`` (``build_dataloader``,
  ``data/build.py:397``, and detreduce's
  :class:`~detreduce.train.trainer.PolicyDataLoader`). The CPU validator forces 0 too
  (validator.py:231; inference dominates there, and detreduce leaves it so).

So detreduce applies its plan from those callbacks: the thread count on the trainer and
the validator, the train loader's worker count on the trainer; and it restores the
caller's thread count afterwards.

The rule (:func:`plan_threads`, pure given ``cores`` and ``load``), on CPU:

- ``workers: auto`` is :func:`detreduce.device.loader_workers` (0 on <= 2 cores, a
  quarter of the cores, 1-4, above): the rule embedding uses for its decode processes;
- ``threads: auto`` is :func:`detreduce.device.cpu_threads` with those auto loader cores
  reserved: every core on <= 2 cores, ``cores - loader_workers(cores)`` above, and 1
  when other processes' load (:func:`detreduce.device.others_load`) exceeds the cores.
  An explicit ``workers`` does not lower it: a CPU training's loader processes wait on
  the forward/backward pass most of the time. Measured on 2 idle cores (BCCD, yolov8n,
  3 epochs at 256 px, ``benchmarks/NOTES_train.md``): Ultralytics' 1 thread 45.9 s;
  2 threads 28.0 s with 0 workers, 33.6 s with 2; 1 thread with 2 workers 45.6 s.

On a GPU (and MPS), ``threads: auto`` leaves Ultralytics' behaviour alone and
``workers: auto`` is Ultralytics' default (8, ``cfg/default.yaml:21``). A number is
always applied as given (on CPU too, where Ultralytics alone would train with 0 workers).

Determinism: the thread count changes the floating-point summation order, so runs with
1 and 2 threads differ in the last bits (and then in their metrics); same seed and same
threads give the same run. ``auto`` depends on the machine and its load: set a number
to reproduce a run elsewhere (``result.json`` records ``threads`` and ``workers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from detreduce.device import cpu_cores, cpu_threads, loader_workers, others_load

#: Ultralytics' default ``workers`` (its ``cfg/default.yaml``), what ``auto`` means on a GPU.
ULTRALYTICS_WORKERS = 8


@dataclass(frozen=True)
class ThreadPlan:
    """What a training run uses: torch CPU ``threads`` (None: Ultralytics' own choice,
    left alone) and train-loader ``workers``; ``why`` says how they were chosen."""

    threads: int | None
    workers: int
    why: str = ""

    def apply(self, _owner: Any = None) -> None:
        """Set torch's CPU threads (an Ultralytics callback: it passes the trainer or validator)."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    def apply_to_trainer(self, trainer: Any) -> None:
        """Threads, and the train loader's workers (Ultralytics zeroed them on CPU)."""
        trainer.args.workers = self.workers
        self.apply()

    def attach(self, model: Any) -> None:
        """Apply the plan on ``model``'s trainer and validator right after Ultralytics
        set its own thread count and workers (see the module docstring)."""
        model.add_callback("on_pretrain_routine_start", self.apply_to_trainer)
        if self.threads is not None:
            model.add_callback("on_val_start", self.apply)


def plan_threads(
    threads: int | str = "auto",
    workers: int | str = "auto",
    device: str = "cpu",
    *,
    cores: int | None = None,
    load: float | None = None,
) -> ThreadPlan:
    """Resolve ``threads`` and ``workers`` (``auto`` or a number) for a run on ``device``
    (a :class:`~detreduce.device.Device` kind: ``cpu``, ``cuda`` or ``mps``).

    ``cores`` (default :func:`~detreduce.device.cpu_cores`) and ``load`` (default
    :func:`~detreduce.device.others_load`) are this machine's unless given; with both
    given the function is pure. The rule is in the module docstring.
    """
    if device != "cpu":
        return ThreadPlan(
            threads=None if threads == "auto" else int(threads),
            workers=ULTRALYTICS_WORKERS if workers == "auto" else int(workers),
            why=f"{device}: torch threads {'left to Ultralytics' if threads == 'auto' else 'as set'}",
        )
    cores = cpu_cores() if cores is None else int(cores)
    reserved = loader_workers(cores)
    why = f"{cores} cores"
    if threads == "auto":
        load = others_load() if load is None else float(load)
        threads = cpu_threads(cores, load, reserved=reserved)
        busy = " (busy: 1 thread)" if load > cores else ""
        why += f", load of other processes {load:.2f}{busy}"
    return ThreadPlan(
        threads=int(threads), workers=reserved if workers == "auto" else int(workers), why=why
    )


@contextmanager
def restored_threads() -> Iterator[None]:
    """Give torch's CPU thread count back as it was on entry (Ultralytics and
    :meth:`ThreadPlan.apply` change it inside)."""
    import torch

    saved = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(saved)
