"""Validators for reducer parameters, run at ``select`` time (as scikit-learn does at ``fit``).

Every error names the method and the parameter, says what was expected and what arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

from detreduce.errors import ConfigError


def _fail(method: str, name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"method {method!r}: parameter {name} must be {expected}, got {value!r}")


def check_int(
    method: str,
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    allow: Iterable[Any] = (),
) -> None:
    """``value`` is an int in ``[low, high]`` (or one of the ``allow`` sentinels)."""
    allow = tuple(allow)
    if any(value is a or (isinstance(a, str) and value == a) for a in allow):
        return
    rng = f"in [{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
    extra = f" or one of {list(allow)}" if allow else ""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _fail(method, name, f"an integer {rng}{extra}", value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(method, name, f"an integer {rng}{extra}", value)


def check_float(
    method: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow: Iterable[Any] = (),
) -> None:
    """``value`` is a real number in the interval (open ends where asked)."""
    allow = tuple(allow)
    if any(value is a or (isinstance(a, str) and value == a) for a in allow):
        return
    lo = f"{'(' if low_open else '['}{low if low is not None else '-inf'}"
    hi = f"{high if high is not None else 'inf'}{')' if high_open else ']'}"
    extra = f" or one of {list(allow)}" if allow else ""
    expected = f"a number in {lo}, {hi}{extra}"
    if isinstance(value, bool) or not isinstance(value, Real) or value != value:
        raise _fail(method, name, expected, value)
    if low is not None and (value < low or (low_open and value == low)):
        raise _fail(method, name, expected, value)
    if high is not None and (value > high or (high_open and value == high)):
        raise _fail(method, name, expected, value)


def check_choice(method: str, name: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise _fail(method, name, f"one of {list(choices)}", value)


def check_bool(method: str, name: str, value: Any) -> None:
    """``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise _fail(method, name, "true or false", value)
