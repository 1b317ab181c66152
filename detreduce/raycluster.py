"""Joining Ray: one door for every part of detreduce that runs on a Ray cluster (sweep
trials as tasks, embedding shards on actors), so they start or join Ray the same way.

``address`` None starts (or reuses) a Ray instance on this machine, with no dashboard and
no outside connections, as the rest of detreduce; ``auto`` or ``HOST:PORT`` joins an
existing cluster (``ray start --head`` on its head node). Ray is imported only here and
only when asked (``pip install 'detreduce[ray]'``).
"""

from __future__ import annotations

import os
from typing import Any

from detreduce.errors import ConfigError


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, initialised: joined to ``address`` or a local head."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed: pip install 'detreduce[ray]' (or pip install ray)"
        ) from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise ConfigError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    return ray
