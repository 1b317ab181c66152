"""The method catalog: every selection method registered once, with its kind and traits.

Three kinds of method reduce what a detector trains on (see docs/architecture.md):

- ``embedding``: a reducer on an embedding matrix (``detreduce.reducers``: k-center,
  clc, prd, ...). Balance quotas are applied around it by :mod:`detreduce.balance`.
- ``dataset``: a baseline that needs file names or annotations, not embeddings
  (``ultralytics_fraction``, what Ultralytics' ``fraction=`` keeps).
- ``training``: a policy that changes what the trainer sees each epoch
  (:mod:`detreduce.train.policy`; ``full`` trains on every image every epoch).

The reduce command, the sweep grid, ``detreduce methods``, the reports and the docs all
read this one table, so a method's name, aliases, traits, parameters and label are
written once. Registrants import this module (it imports none of them until a lookup
needs the full table: :func:`_load`), so imports still flow downward.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from detreduce.errors import ConfigError

KINDS = ("embedding", "dataset", "training")
#: Joins a static method and a training policy: ``kcenter+infobatch`` selects with
#: kcenter, then trains the reduced split under infobatch.
COMBINE = "+"
#: Sets a parameter inside a method's name: ``infobatch@prune_ratio=0.75`` (one
#: ``@key=value`` per parameter). A variant is a method of its own in a sweep (its own run
#: ids, rows and report lines) beside the same full-data and baseline runs, which a
#: protocol-wide parameter (``run_sweep(params=...)``) would re-key and rerun. The
#: characters are safe in shell words, in comma-separated ``--methods`` and in file names.
PARAM = "@"
#: Modules whose import registers methods (the catalog loads them on first lookup).
REGISTRANTS = ("detreduce.reducers", "detreduce.methods.dataset", "detreduce.train.policy")


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: canonical name (what ``--method`` / ``--methods`` take).
        kind: ``embedding``, ``dataset`` or ``training``.
        summary: one line for ``detreduce methods``.
        factory: builds the method object from its keyword parameters.
        aliases: other accepted spellings.
        uses_features: reads embeddings (the reduce command embeds only for these).
        joint: under balance, runs once on all rows with the strata as ``groups``
            (it needs the labels, e.g. DES class prototypes), else once per stratum.
        balanced: honours ``--balance``; a method that is ``False`` here always selects
            with balance ``none`` and records it (the uniform ``random`` baseline).
        baseline: what a baseline is, for tables and plots (empty: not a baseline).
        reference: the paper (or code) the method comes from.
        uses_losses: reads per-image YOLO training losses (a short proxy run computes them
            once per sweep, :mod:`detreduce.train.scores`).
        policy: for a combination ``static+policy`` (``kcenter+infobatch``), the training
            policy the statically reduced split is then trained under; "" otherwise.
    """

    name: str
    kind: str
    summary: str
    factory: Callable[..., Any] = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    uses_features: bool = True
    joint: bool = False
    balanced: bool = True
    baseline: str = ""
    reference: str = ""
    uses_losses: bool = False
    policy: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"method {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )

    @classmethod
    def from_class(cls, method_cls: type, kind: str, aliases: tuple[str, ...] = ()) -> MethodSpec:
        """A spec from a method class's attributes (``name``, ``summary``, ``reference``,
        and the traits ``uses_features``, ``joint``, ``balanced``, ``baseline`` where set)."""
        traits = {
            t: getattr(method_cls, t)
            for t in ("uses_features", "joint", "balanced", "baseline", "reference", "uses_losses")
            if hasattr(method_cls, t)
        }
        return cls(
            name=method_cls.name,
            kind=kind,
            summary=method_cls.summary,
            factory=method_cls,
            aliases=tuple(aliases),
            **traits,
        )

    @property
    def selection(self) -> str:
        """The static method that selects the split (the name before ``+``)."""
        return self.name.split(COMBINE, 1)[0]

    @property
    def label(self) -> str:
        """Name for reports: a baseline says what it is (``random (uniform random)``)."""
        return f"{self.name} ({self.baseline})" if self.baseline else self.name

    @property
    def params(self) -> dict[str, Any]:
        """Keyword parameters and their defaults (read from the factory's signature)."""
        sig = inspect.signature(self.factory)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }

    def create(self, *, validate: bool = True, **params: Any) -> Any:
        """The method object; an unknown parameter (or, with ``validate``, a bad value)
        raises ``ConfigError``.

        ``validate`` runs the object's ``_check`` now, before any data is read (the
        selection path does); without it values are checked when the method runs, as
        scikit-learn checks at ``fit``.
        """
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            close = {u: difflib.get_close_matches(u, list(self.params), n=1) for u in unknown}
            hints = ", ".join(f"{u} (did you mean {c[0]}?)" if c else u for u, c in close.items())
            known = ", ".join(self.params) or "none"
            raise ConfigError(
                f"method {self.name!r}: unknown parameter {hints}; its parameters: {known}"
            )
        try:
            obj = self.factory(**params)
        except TypeError as exc:
            raise ConfigError(f"method {self.name!r}: {exc}") from None
        check = getattr(obj, "_check", None)
        if validate and callable(check):
            check()
        return obj

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (``detreduce methods --json``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "aliases": list(self.aliases),
            "uses_features": self.uses_features,
            "uses_losses": self.uses_losses,
            "joint": self.joint,
            "balanced": self.balanced,
            "baseline": self.baseline,
            "reference": self.reference,
            "label": self.label,
            "policy": self.policy,
            "params": {k: _plain(v) for k, v in self.params.items()},
        }


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


_SPECS: dict[str, MethodSpec] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to the catalog; a name or alias used twice is a bug and raises."""
    for key in (spec.name, *spec.aliases):
        owner = _SPECS.get(key) or _SPECS.get(_ALIASES.get(key, ""))
        if owner is not None and owner.name != spec.name:
            raise ValueError(f"method name {key!r} is taken by {owner.name!r}")
    _SPECS[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def _load() -> None:
    """Import every registrant once, so the table is complete before a lookup."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in REGISTRANTS:
            importlib.import_module(module)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def canonical_name(name: str) -> str:
    """The canonical name of ``name`` (an alias, any case, ``-`` or ``_``).

    A combination ``static+policy`` is canonicalised part by part (the first part a
    static method, the second a training policy). An unknown name raises
    ``ConfigError`` with the closest known names.
    """
    _load()
    if COMBINE in str(name):
        return _combination(str(name)).name
    if PARAM in str(name):
        return _variant(str(name)).name
    key = _key(name)
    key = _ALIASES.get(key, key)
    if key in _SPECS:
        return key
    known = sorted(_SPECS) + sorted(_ALIASES)
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown method {name!r}.{hint} Run `detreduce methods` for the list.")


def _combination(name: str) -> MethodSpec:
    """The spec of ``static+policy``: the static method's traits and factory, trained
    under the policy (no peer tool combines the two: it is one trial of a sweep)."""
    parts = [p for p in str(name).split(COMBINE)]
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(
            f"method {name!r}: a combination is one static method and one training policy, "
            "e.g. kcenter+infobatch"
        )
    static = get_method(parts[0])
    if static.kind == "training" or static.policy:
        raise ConfigError(
            f"method {name!r}: the part before '+' selects the split and must be a static "
            f"method, not the training policy {static.name!r}"
        )
    policy = get_method(parts[1], kind="training")
    return replace(
        static,
        name=f"{static.name}{COMBINE}{policy.name}",
        summary=f"{static.name} selection, then trained under {policy.name}",
        aliases=(),
        baseline="",
        reference=f"{static.reference}; {policy.reference}".strip("; "),
        policy=policy.name,
    )


def _variant(name: str) -> MethodSpec:
    """The spec of ``method@key=value[@key=value...]``: the method with those parameters
    as its defaults. Values read as numbers or true/false where they parse so, else as
    text; the name is canonical (keys sorted, values as parsed, defaults dropped), so
    ``infobatch@prune_ratio=0.50`` is ``infobatch`` and one variant has one run id."""
    base, *pairs = str(name).split(PARAM)
    spec = get_method(base)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ConfigError(
                f"method {name!r}: write each parameter as @key=value, e.g. "
                "infobatch@prune_ratio=0.75"
            )
        params[_key(key)] = _parse_value(text.strip())
    try:  # unknown parameters and bad values fail here, in one line naming what was typed
        spec.create(**params)
    except ConfigError as error:
        reason = re.sub(rf"^(method )?'?{re.escape(spec.name)}'?: ", "", str(error))
        raise ConfigError(f"method {name!r}: {reason}") from None
    defaults = spec.params
    changed = {k: v for k, v in sorted(params.items()) if v != defaults[k]}
    if not changed:
        return spec
    return replace(
        spec,
        name=spec.name + "".join(f"{PARAM}{k}={_value_text(v)}" for k, v in changed.items()),
        summary=f"{spec.summary} ({', '.join(f'{k}={_value_text(v)}' for k, v in changed.items())})",
        factory=functools.partial(spec.factory, **changed),
        aliases=(),
        baseline="",  # random@... is not the uniform baseline the reports pair against
    )


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def get_method(name: str, kind: str | None = None) -> MethodSpec:
    """The spec of a method by name or alias (unknown names fail with suggestions).

    With ``kind``, a method of another kind raises ``ConfigError`` saying what it is.
    A combination ``static+policy`` has the static method's kind.
    """
    canonical = canonical_name(name)
    if COMBINE in canonical:
        spec = _combination(canonical)
    elif PARAM in canonical:
        spec = _variant(canonical)
    else:
        spec = _SPECS[canonical]
    if kind is not None and spec.kind != kind:
        others = ", ".join(s.name for s in list_methods(kind=kind))
        raise ConfigError(
            f"method {spec.name!r} is of kind {spec.kind!r}, not {kind!r}; {kind} methods: {others}"
        )
    return spec


def list_methods(pattern: str | None = None, kind: str | None = None) -> list[MethodSpec]:
    """Registered methods, by kind (embedding, dataset, training) then name.

    ``pattern`` filters names and aliases with shell wildcards (``"k*"``); ``kind``
    keeps one kind.
    """
    _load()
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    out = []
    for spec in _SPECS.values():
        names = (spec.name, *spec.aliases)
        if pattern and not any(fnmatch.fnmatch(n, pattern.lower()) for n in names):
            continue
        if kind is None or spec.kind == kind:
            out.append(spec)
    return sorted(out, key=lambda s: (KINDS.index(s.kind), s.name))


def method_label(name: str) -> str:
    """Report label of a method name; names not in the catalog (old stores) stay as they are."""
    try:
        return get_method(name).label
    except ConfigError:
        return str(name)
