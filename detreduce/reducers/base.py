"""The reducer contract shared by every selection method, and the registry by name.

A reducer sees a matrix ``X`` (n × d embeddings), optional ``groups`` (stratum per
row) and a budget, and returns indices of *real rows* (never synthetic points), in
selection order when the method has one, plus optional per-row scores. Balance across
classes is not a reducer's job: :mod:`detreduce.balance` splits the budget into
per-stratum quotas (:func:`detreduce.quotas.allocate`) and calls the reducer per
stratum, or once with ``groups`` and those ``quotas`` for the joint methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from detreduce.errors import ConfigError
from detreduce.methods import catalog
from detreduce.quotas import resolve_budget  # noqa: F401  (re-exported: the budget rule)


@dataclass(frozen=True)
class ReducerResult:
    """What a reducer returns.

    Attributes:
        indices: row indices into ``X`` of the kept rows, unique, in selection order.
        scores: optional per-row score over all ``n`` rows (meaning documented per method).
    """

    indices: np.ndarray
    scores: np.ndarray | None = None


class Reducer:
    """Base class: subclasses set ``name``/``summary`` and implement ``_select``.

    Constructors take explicit keyword parameters and store them untouched (as
    scikit-learn estimators do); validation happens in :meth:`select`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: True when the method reads the embeddings (False for random-like baselines).
    uses_features: ClassVar[bool] = True
    #: Under balance, run once on all rows with the strata as groups (needs the labels).
    joint: ClassVar[bool] = False
    #: False: the method ignores ``--balance`` (the uniform random baseline).
    balanced: ClassVar[bool] = True
    #: What the method is when it is a baseline, for reports ("" otherwise).
    baseline: ClassVar[str] = ""
    #: The paper or code it comes from.
    reference: ClassVar[str] = ""
    #: True when it reads per-image YOLO training losses (``losses=``; sweeps compute them).
    uses_losses: ClassVar[bool] = False
    #: Parameters holding one value per row of ``X`` (balance slices them with ``X``).
    row_params: ClassVar[tuple[str, ...]] = ()

    def for_rows(self, rows: np.ndarray) -> Reducer:
        """This reducer for ``X[rows]``: per-row parameters (:attr:`row_params`) sliced
        alike, so a stratum or the rows left after reserving one image per class keep
        their own losses. Returns ``self`` when there is nothing to slice."""
        given = {p: getattr(self, p) for p in self.row_params if getattr(self, p) is not None}
        if not given:
            return self
        clone = copy.copy(self)
        for name, value in given.items():
            setattr(clone, name, np.asarray(value)[np.asarray(rows, dtype=np.int64)])
        return clone

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def select(
        self,
        X: np.ndarray,
        budget: float | int,
        groups: np.ndarray | None = None,
        seed: int = 0,
        *,
        quotas: np.ndarray | None = None,
    ) -> ReducerResult:
        """Choose ``budget`` rows of ``X``; never mutates ``X``; same seed, same rows.

        ``quotas``: rows to keep per group, one count per distinct label of ``groups`` in
        sorted label order (``np.unique``), each in ``[0, group size]``, summing to the
        budget. A reducer that honours groups then keeps exactly these counts instead of
        splitting the budget itself (:func:`detreduce.quotas.allocate`), so a joint run
        keeps the same rows per stratum as a per-stratum run. A reducer opts in by taking
        a ``quotas`` keyword in ``_select(X, k, groups, rng, quotas=None)`` (as scikit-learn
        checks ``fit`` for ``sample_weight``); giving quotas to one that does not, or
        without groups, raises :class:`ConfigError`.
        """
        import inspect

        from detreduce.quotas import check_quotas

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
        if quotas is None:
            result = self._select(X, k, groups, rng)
        else:
            if groups is None:
                raise ConfigError(f"method {self.name!r}: quotas need groups (one per row)")
            if "quotas" not in inspect.signature(self._select).parameters:
                raise ConfigError(
                    f"method {self.name!r} does not take per-group quotas; "
                    "run it per stratum (strategy 'per_stratum') instead"
                )
            labels, codes, sizes = np.unique(groups, return_inverse=True, return_counts=True)
            quotas = check_quotas(quotas, sizes, k, labels=labels)
            result = self._select(X, k, groups, rng, quotas=quotas)
        idx = np.asarray(result.indices, dtype=np.int64)
        if len(idx) != k or len(np.unique(idx)) != k or idx.min() < 0 or idx.max() >= len(X):
            raise AssertionError(
                f"{self.name} returned an invalid selection"
            )  # a bug, not user error
        if quotas is not None and not np.array_equal(
            np.bincount(codes[idx], minlength=len(sizes)), quotas
        ):
            raise AssertionError(f"{self.name} did not keep the given quotas")  # a bug
        return ReducerResult(indices=idx, scores=result.scores)

    def _select(
        self, X: np.ndarray, k: int, groups: np.ndarray | None, rng: np.random.Generator
    ) -> ReducerResult:
        raise NotImplementedError


def register(*aliases: str):
    """Class decorator adding a reducer to the method catalog (kind ``embedding``).

    The class's ``name``, ``summary``, ``uses_features``, ``joint``, ``balanced``,
    ``baseline`` and ``reference`` become the catalog entry's traits.
    """

    def wrap(cls: type[Reducer]) -> type[Reducer]:
        catalog.register(catalog.MethodSpec.from_class(cls, "embedding", aliases))
        return cls

    return wrap


def list_reducers() -> list[catalog.MethodSpec]:
    """Every reducer (catalog methods of kind ``embedding``), sorted by name."""
    return catalog.list_methods(kind="embedding")


def get_reducer(name: str, **params: Any) -> Reducer:
    """Create a reducer by name (or alias); an unknown name fails with suggestions.

    Parameter values are checked when it runs (``select``), as scikit-learn does.
    """
    return catalog.get_method(name, kind="embedding").create(validate=False, **params)
