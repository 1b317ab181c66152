"""One parser for every device spelling, with a torch and an Ultralytics view.

Users type devices the way either library spells them: torch's ``cpu``, ``cuda``,
``cuda:1``, ``mps``, Ultralytics' ``0`` or ``0,1``, or ``auto``. :func:`parse_device`
turns any of them into one :class:`Device`, checked against this machine, so that
embedding (torch) and training (Ultralytics) always agree on what ``device`` means.
"""

from __future__ import annotations

import re
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
