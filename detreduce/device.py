"""One parser for every device spelling, with a torch and an Ultralytics view.

Users type devices the way either library spells them: torch's ``cpu``, ``cuda``,
``cuda:1``, ``mps``, Ultralytics' ``0`` or ``0,1``, or ``auto``. :func:`parse_device`
turns any of them into one :class:`Device`, checked against this machine, so that
embedding (torch) and training (Ultralytics) always agree on what ``device`` means.

The CPU side of "the machine" lives here too: :func:`cpu_cores`, :func:`others_load`,
and the one rule for torch CPU threads and loader processes (:func:`cpu_threads`,
:func:`loader_workers`) that embedding and training both apply.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from detreduce.errors import ConfigError

KINDS = ("cpu", "cuda", "mps")
ACCEPTED = "auto, cpu, cuda, cuda:N, N or N,M (CUDA GPU indices, as Ultralytics spells them), mps"
_INDICES = re.compile(r"\d+(,\d+)*")


@dataclass(frozen=True)
class Device:
    """A resolved device: ``kind`` (``cpu``, ``cuda`` or ``mps``) and CUDA ``indices``.

    ``indices`` is non-empty exactly when ``kind == 'cuda'``.
    """

    kind: str
    indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"device kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if (self.kind == "cuda") != bool(self.indices):
            raise ConfigError(f"GPU indices go with kind 'cuda' only, got {self!r}")

    @property
    def torch(self) -> str:
        """A ``torch.device`` string: ``cpu``, ``mps`` or ``cuda:N`` (the first GPU of several)."""
        return f"cuda:{self.indices[0]}" if self.kind == "cuda" else self.kind

    @property
    def ultralytics(self) -> str:
        """The ``device=`` argument of Ultralytics: ``cpu``, ``mps``, ``0`` or ``0,1``."""
        return ",".join(map(str, self.indices)) if self.kind == "cuda" else self.kind


def parse_device(value: Any = "auto") -> Device:
    """Parse a device as users type it and check this machine has it.

    Accepts ``auto`` (also ``None``, ``""``, ``none``: the first CUDA GPU when there is
    one, else the CPU), ``cpu``, ``cuda`` (= ``cuda:0``), ``cuda:N``, ``N`` or ``N,M``
    (Ultralytics' GPU indices, an ``int`` too), ``mps`` (Apple GPUs, where torch has
    them), a :class:`torch.device` or a :class:`Device`. Case and spaces are ignored.

    Raises:
        ConfigError: an unknown spelling, or a GPU this machine does not have (says
            what was given, what is accepted and what the machine has).
    """
    if isinstance(value, Device):
        return value
    text = "auto" if value is None else str(value).strip().lower().replace(" ", "")
    if text in ("", "auto", "none"):
        return Device("cuda", (0,)) if _cuda_count() else Device("cpu")
    if text == "cpu":
        return Device("cpu")
    if text == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' requested but this torch build has no usable MPS")
        return Device("mps")
    spec = "0" if text == "cuda" else text.removeprefix("cuda:")
    if not _INDICES.fullmatch(spec):
        raise ConfigError(f"device must be one of {ACCEPTED}; got {value!r}")
    indices = tuple(int(i) for i in spec.split(","))
    if len(set(indices)) != len(indices):
        raise ConfigError(f"device {value!r} names a GPU twice")
    have = _cuda_count()
    if max(indices) >= have:
        raise ConfigError(
            f"device {value!r} requested but this machine has {have} CUDA device(s)"
            + (" (use device=cpu or auto)" if have == 0 else f" (indices 0..{have - 1})")
        )
    return Device("cuda", indices)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


# ------------------------------------------------------------- CPU threads and workers
def cpu_cores() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (Linux; a
    container's or ``taskset``'s limit), else ``os.cpu_count()``."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def others_load() -> float:
    """The 1-minute load average less this process's own recent share of it (>= 0).

    The load average counts this process too: in a sweep the previous trial's training
    threads are still in it when the next trial starts. Its share is estimated as the
    process's average CPU use (its own and its finished children's CPU seconds over its
    lifetime) times the weight the load average gives that lifetime,
    ``1 - exp(-age / 60 s)``. 0 where the OS has no load average.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return 0.0
    try:
        import psutil  # an Ultralytics dependency

        proc = psutil.Process()
        age = max(1e-3, time.time() - proc.create_time())
        used = sum(proc.cpu_times()[:4])  # user, system, children_user, children_system
    except Exception:  # noqa: BLE001 - no psutil, or no process table: count ourselves as others
        return load
    return max(0.0, load - used / age * (1.0 - math.exp(-age / 60.0)))


def loader_workers(cores: int) -> int:
    """Data-loading processes beside a CPU forward pass: none on 1-2 cores, else a quarter
    of the cores (1..4).

    On CPU the forward (and backward) pass costs several times the decode and
    augmentation, so on two cores both go to torch and loading stays inline.
    """
    return 0 if cores <= 2 else max(1, min(4, cores // 4))


def cpu_threads(cores: int, load: float, reserved: int = 0) -> int:
    """Torch CPU threads: the cores left after ``reserved`` ones, or 1 on a busy machine.

    OpenMP threads wait for each other at every layer; when other processes preempt
    them, each wait costs a scheduler time slice. Measured on a 2-core machine with a
    load average of ~5: MobileNetV2 at 32 px embedded 6 img/s on 2 threads and 328 img/s
    on 1. So when the load of other processes (:func:`others_load`) already exceeds the
    core count, use 1.
    """
    if load > cores:
        return 1
    return max(1, cores - reserved)
