"""The reducer contract shared by every selection method, and the registry by name.

A reducer sees a matrix ``X`` (n × d embeddings), optional ``groups`` (stratum per
row) and a budget, and returns indices of *real rows* (never synthetic points), in
selection order when the method has one, plus optional per-row scores. Balance across
classes is not a reducer's job: :mod:`detreduce.balance` splits the budget into
per-stratum quotas and calls the reducer per stratum.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from detreduce.errors import ConfigError


@dataclass(frozen=True)
class ReducerResult:
    """What a reducer returns.

    Attributes:
        indices: row indices into ``X`` of the kept rows, unique, in selection order.
        scores: optional per-row score over all ``n`` rows (meaning documented per method).
    """

    indices: np.ndarray
    scores: np.ndarray | None = None


def resolve_budget(budget: float | int, n: int) -> int:
    """Turn a budget into a row count.

    A float is a fraction in (0, 1] (rounded to the nearest row, at least 1);
    an int is a count in [1, n].
    """
    if isinstance(budget, bool) or not isinstance(budget, int | float | np.integer | np.floating):
        raise ConfigError(f"budget must be a fraction in (0, 1] or a count, got {budget!r}")
    if isinstance(budget, float | np.floating):
        if not 0 < budget <= 1:
            raise ConfigError(f"fraction must be in (0, 1], got {budget}")
        return max(1, min(n, int(round(float(budget) * n))))
    if not 1 <= budget <= n:
        raise ConfigError(f"count must be between 1 and {n}, got {budget}")
    return int(budget)


class Reducer:
    """Base class: subclasses set ``name``/``summary`` and implement ``_select``.

    Constructors take explicit keyword parameters and store them untouched (as
    scikit-learn estimators do); validation happens in :meth:`select`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: True when the method reads the embeddings (False for random-like baselines).
    uses_features: ClassVar[bool] = True

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def select(
        self,
        X: np.ndarray,
        budget: float | int,
        groups: np.ndarray | None = None,
        seed: int = 0,
    ) -> ReducerResult:
        """Choose ``budget`` rows of ``X``; never mutates ``X``; same seed, same rows."""
        X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0:
            raise ConfigError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ConfigError("X holds NaN or infinite values")
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (len(X),):
                raise ConfigError(f"groups must have shape ({len(X)},), got {groups.shape}")
        k = resolve_budget(budget, len(X))
        rng = np.random.default_rng(seed)
        result = self._select(X, k, groups, rng)
        idx = np.asarray(result.indices, dtype=np.int64)
        if len(idx) != k or len(np.unique(idx)) != k or idx.min() < 0 or idx.max() >= len(X):
            raise AssertionError(
                f"{self.name} returned an invalid selection"
            )  # a bug, not user error
        return ReducerResult(indices=idx, scores=result.scores)

    def _select(
        self, X: np.ndarray, k: int, groups: np.ndarray | None, rng: np.random.Generator
    ) -> ReducerResult:
        raise NotImplementedError


@dataclass(frozen=True)
class ReducerSpec:
    name: str
    cls: type[Reducer]
    summary: str
    aliases: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, ReducerSpec] = {}
_ALIASES: dict[str, str] = {}


def register(*aliases: str):
    """Class decorator adding a reducer to the registry under its ``name`` and aliases."""

    def wrap(cls: type[Reducer]) -> type[Reducer]:
        spec = ReducerSpec(cls.name, cls, cls.summary, tuple(aliases))
        _REGISTRY[cls.name] = spec
        for alias in aliases:
            _ALIASES[alias] = cls.name
        return cls

    return wrap


def list_reducers() -> list[ReducerSpec]:
    """Every registered reducer, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_reducer(name: str, **params: Any) -> Reducer:
    """Create a reducer by name (or alias); an unknown name fails with suggestions."""
    key = _ALIASES.get(name.lower().replace("-", "_"), name.lower().replace("-", "_"))
    if key not in _REGISTRY:
        known = sorted(_REGISTRY) + sorted(_ALIASES)
        close = difflib.get_close_matches(name.lower(), known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown method {name!r}.{hint} Run `detreduce methods` for the list.")
    try:
        return _REGISTRY[key].cls(**params)
    except TypeError as exc:
        raise ConfigError(f"method {key!r}: {exc}") from None
