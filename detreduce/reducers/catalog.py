"""What ``detreduce methods`` prints: every registered method, its summary and parameters."""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any

from detreduce.reducers.base import list_reducers


@dataclass(frozen=True)
class MethodInfo:
    """One registered method.

    Attributes:
        name: canonical name (what ``--method`` takes).
        aliases: other accepted names.
        summary: one line.
        uses_features: whether the method reads the embeddings.
        params: keyword parameters and their defaults (from ``cfg/reducers.yaml``).
    """

    name: str
    aliases: tuple[str, ...]
    summary: str
    uses_features: bool
    params: dict[str, Any] = field(default_factory=dict)


def describe_methods(pattern: str | None = None) -> list[MethodInfo]:
    """Registered methods sorted by name; ``pattern`` filters names and aliases (``"k*"``)."""
    out = []
    for spec in list_reducers():
        names = (spec.name, *spec.aliases)
        if pattern and not any(fnmatch.fnmatch(n, pattern.lower()) for n in names):
            continue
        sig = inspect.signature(spec.cls.__init__)
        params = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }
        out.append(
            MethodInfo(spec.name, spec.aliases, spec.summary, spec.cls.uses_features, params)
        )
    return out
