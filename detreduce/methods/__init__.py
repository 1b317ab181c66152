"""The method catalog (every selection method once, with its kind) and dataset-level baselines."""

from detreduce.methods.catalog import (
    KINDS,
    MethodSpec,
    canonical_name,
    get_method,
    list_methods,
    method_label,
    register,
)

__all__ = [
    "KINDS",
    "MethodSpec",
    "canonical_name",
    "get_method",
    "list_methods",
    "method_label",
    "register",
]
