"""Selection methods behind one contract; import registers them all."""

from detreduce.reducers import random  # noqa: F401  (registers)
from detreduce.reducers.base import (
    Reducer,
    ReducerResult,
    get_reducer,
    list_reducers,
    register,
    resolve_budget,
)

__all__ = ["Reducer", "ReducerResult", "get_reducer", "list_reducers", "register", "resolve_budget"]
