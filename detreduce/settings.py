"""Settings objects: one frozen dataclass per config section, built once from cfg + overrides.

As Ultralytics' ``get_cfg`` builds its run configuration from ``cfg/default.yaml`` plus
the user's overrides, every section of ``detreduce/cfg/`` that a function reads has one
settings class here, and the API functions take the object instead of a dozen ``None``
keyword arguments forwarded layer to layer:

========================  ==========================================================
class                     section
========================  ==========================================================
:class:`DataSettings`     ``cfg/data.yaml`` (reading, validation, output root)
:class:`FeatureSettings`  ``cfg/features.yaml`` (``embed_dataset``)
:class:`BalanceSettings`  ``cfg/balance.yaml`` (strata, quotas, selection figures)
:class:`ReduceSettings`   ``cfg/reduce.yaml`` (``reduce_dataset``: method, fraction, seed)
:class:`TrainSettings`    ``cfg/train.yaml`` without the ``energy_*`` keys (``train_yolo``)
:class:`EnergySettings`   the ``energy_*`` keys of ``cfg/train.yaml`` (``EnergyMeter``)
:class:`SweepSettings`    ``cfg/sweep.yaml`` without the ``demo_*`` keys (``run_sweep``)
========================  ==========================================================

The build rule, the same for every class (``TrainSettings.build(base, **overrides)``):

1. start from the cfg defaults of the section;
2. update with ``base``: another instance of the class or a mapping (a bare string for
   :class:`BalanceSettings` is its ``mode``);
3. update with ``overrides``.

A ``None`` value, in ``base`` or in the overrides, means "use the default", so CLI options
can pass straight through. An unknown key raises :class:`~detreduce.errors.ConfigError`
naming the section, with "did you mean" suggestions (difflib). Every field is validated
on construction from a declarative table of rules (type, range, choice), cheap rules first
(so ``--fraction 1.5`` fails before the method catalog is imported), and every message is
one line: which setting (its cfg key), what was expected, what arrived. ``to_dict()`` gives
the JSON-able values for manifests; ``replace(**changes)`` builds a changed copy through
the same path; ``changed()`` lists the fields that differ from the cfg defaults.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from detreduce.config import defaults
from detreduce.errors import ConfigError

#: Embedding levels, dtypes and per-image cache keys of :func:`detreduce.features.embed_dataset`.
FEATURE_LEVELS = ("image", "box", "both")
FEATURE_DTYPES = ("float32", "float16")
CACHE_KEYS = ("stat", "content")
RUNTIMES = ("auto", "torch", "onnxruntime")
#: Where embedding runs: this process, or shards on Ray actors (detreduce.features.ray_embed).
EMBED_BACKENDS = ("local", "ray")
#: What a reduction or a sweep selects on: image embeddings or box crops aggregated to images.
SELECTION_LEVELS = ("image", "box")
ON_ERROR_CHOICES = ("warn", "raise")


# --------------------------------------------------------------------------- rules
class Rule:
    """One field's constraint: ``check(value)`` returns the coerced value or raises ``ValueError``
    whose text completes "expected ..."; ``expensive`` rules run after all cheap ones."""

    expected: str = "a value"
    expensive: bool = False
    optional: bool = False

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def __call__(self, value: Any) -> Any:
        if value is None:
            if self.optional:
                return None
            raise ValueError(self.expected)
        return self.check(value)


def _or_null(text: str, optional: bool) -> str:
    return f"{text} or null" if optional else text


class Int(Rule):
    def __init__(
        self, lo: int | None = None, *, multiple: int | None = None, optional: bool = False
    ) -> None:
        self.lo, self.multiple, self.optional = lo, multiple, optional
        text = "an integer" + (f" >= {lo}" if lo is not None else "")
        if multiple:
            text += f" and a multiple of {multiple}"
        self.expected = _or_null(text, optional)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(self.expected)
        value = int(value)
        if self.lo is not None and value < self.lo:
            raise ValueError(self.expected)
        if self.multiple and value % self.multiple:
            lower = max(self.multiple, value // self.multiple * self.multiple)
            raise ValueError(f"{self.expected} (e.g. {lower} or {lower + self.multiple})")
        return value


class IntOrAuto(Int):
    """An integer (as :class:`Int`; a digit string from the CLI too) or ``auto``, which the
    code that uses the value resolves for the machine it runs on."""

    def __init__(self, lo: int | None = None) -> None:
        super().__init__(lo)
        self.expected = f"auto or {self.expected}"

    def check(self, value: Any) -> int | str:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "auto":
                return "auto"
            if not text.isdigit():
                raise ValueError(self.expected)
            value = int(text)
        return super().check(value)


class Float(Rule):
    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        optional: bool = False,
        text: str | None = None,
    ) -> None:
        self.lo, self.hi, self.lo_open, self.optional = lo, hi, lo_open, optional
        if text is None:
            if lo is not None and hi is not None:
                text = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
            elif lo is not None:
                text = f"a number {'>' if lo_open else '>='} {lo:g}"
            else:
                text = "a number"
        self.expected = _or_null(text, optional)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(self.expected)
        value = float(value)
        if math.isnan(value):
            raise ValueError(self.expected)
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            raise ValueError(self.expected)
        if self.hi is not None and value > self.hi:
            raise ValueError(self.expected)
        return value


class Bool(Rule):
    expected = "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(self.expected)
        return value


class Str(Rule):
    def __init__(self, what: str = "a non-empty string") -> None:
        self.expected = what

    def check(self, value: Any) -> str:
        if not isinstance(value, str | Path) or not str(value).strip():
            raise ValueError(self.expected)
        return str(value)


class Choice(Rule):
    """One of ``options`` (a tuple, or a function returning it: a registry read lazily)."""

    def __init__(self, options: Sequence[str] | Callable[[], Sequence[str]], **kw: Any) -> None:
        self._options = options
        self.expensive = bool(kw.get("expensive", callable(options)))

    @property
    def options(self) -> tuple[str, ...]:
        opts = self._options() if callable(self._options) else self._options
        return tuple(opts)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.options)

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise ValueError(self.expected)
        return value


class ListOf(Rule):
    """A list (or tuple) of items, each checked by ``item``; stored as a tuple."""

    def __init__(self, item: Rule, *, nonempty: bool = True, increasing: bool = False) -> None:
        self.item, self.nonempty, self.increasing = item, nonempty, increasing
        self.expensive = item.expensive

    @property
    def expected(self) -> str:  # type: ignore[override]  # lazy: item choices may be a registry
        return (
            f"a {'non-empty ' if self.nonempty else ''}list"
            + (", increasing," if self.increasing else "")
            + f" each {self.item.expected}"
        )

    def check(self, value: Any) -> tuple:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ValueError(self.expected)
        try:
            items = tuple(self.item(v) for v in value)
        except ConfigError:  # an item check with its own message (an unknown method name)
            raise
        except ValueError:
            raise ValueError(self.expected) from None
        if self.nonempty and not items:
            raise ValueError(self.expected)
        if self.increasing and any(b <= a for a, b in zip(items, items[1:])):
            raise ValueError(self.expected)
        return items


class Custom(Rule):
    """A function that returns the coerced value or raises ``ValueError``/``ConfigError``."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        expected: str,
        *,
        expensive: bool = False,
        optional: bool = False,
    ):
        self.fn, self.expected, self.expensive, self.optional = fn, expected, expensive, optional

    def check(self, value: Any) -> Any:
        return self.fn(value)


# ------------------------------------------------------------------- custom checks
def _model(value: Any) -> str:
    """A zoo model name, a model YAML, a local ``.pt`` or an official Ultralytics weight name.

    Whether an official name that is not on disk may be downloaded depends on
    ``allow_download``: :meth:`TrainSettings.__post_init__` checks the pair.
    """
    from detreduce.train.zoo import check_model

    text = Str().check(value)
    check_model(text, allow_download=True)
    return text


def _device(value: Any) -> str:
    """A device spelling :func:`detreduce.device.parse_device` accepts, kept as typed.

    ``auto`` and ``cpu`` cannot fail, so they are accepted without importing torch
    (resolving ``auto`` happens when the device is used); every other spelling is
    parsed and checked against this machine now.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("a device such as auto, cpu, 0, 0,1 or cuda:1")
    text = str(value)
    if text.strip().lower() not in ("auto", "cpu"):
        from detreduce.device import parse_device

        parse_device(text)  # unknown spellings and missing GPUs raise ConfigError
    return text


def _country(value: Any) -> str:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha()):
        raise ValueError("an ISO 3166-1 alpha-3 country code such as USA or FRA")
    return value


def _method(value: Any) -> str:
    from detreduce.methods import canonical_name

    return canonical_name(Str("a method name (see `detreduce methods`)").check(value))


def _budget(value: Any) -> float | int:
    """A share in (0, 1] (a float) or an image count >= 1 (an int)."""
    expected = "a share in (0, 1] (e.g. 0.25) or a whole image count >= 1 (e.g. 100)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(expected)
    if isinstance(value, numbers.Integral):
        if int(value) < 1:
            raise ValueError(expected)
        return int(value)
    value = float(value)
    if not 0 < value <= 1:
        raise ValueError(expected)
    return value


def _fractions(value: Any) -> tuple[float, ...]:
    """Shares in (0, 1]; 1.0 (the full-data baseline, always run) is dropped; sorted."""
    expected = "a list of shares in (0, 1] with at least one below 1, e.g. [0.25, 0.5]"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(expected)
    out: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ValueError(expected)
        f = float(item)
        if not 0 < f <= 1:
            raise ValueError(expected)
        if f < 1 and f not in out:
            out.append(f)
    if not out:
        raise ValueError(expected)
    return tuple(sorted(out))


def _ray_address(value: Any) -> str | None:
    text = str(value).strip()
    if text.lower() in ("", "null", "none"):
        return None
    if (
        text == "auto"
        or (":" in text and text.rsplit(":", 1)[1].isdigit())
        or text.startswith("ray://")
    ):
        return text
    raise ValueError("null (this machine), auto or HOST:PORT")


def _backends() -> tuple[str, ...]:
    from detreduce.sweep.runner import BACKENDS

    return tuple(sorted(BACKENDS))


def _balance_modes() -> tuple[str, ...]:
    from detreduce.balance import BALANCE_MODES

    return BALANCE_MODES


def _strategies() -> tuple[str, ...]:
    from detreduce.balance import STRATEGIES

    return STRATEGIES


def _schemes() -> tuple[str, ...]:
    from detreduce.balance import SCHEMES

    return tuple(SCHEMES)


def _metrics() -> tuple[str, ...]:
    from detreduce.metrics import METRICS

    return METRICS


def _tracking_modes() -> tuple[str, ...]:
    from detreduce.energy import TRACKING_MODES

    return TRACKING_MODES


# ---------------------------------------------------------------------- the base
class Settings:
    """Base of the settings classes (see the module docstring for the build rule).

    Subclasses are frozen dataclasses and declare ``SECTION`` (the cfg file), ``PREFIX``
    (cfg keys are ``PREFIX + field name``), ``SHORTHAND`` (the field a bare string
    means) and ``RULES`` (one :class:`Rule` per field).
    """

    SECTION: ClassVar[str]
    PREFIX: ClassVar[str] = ""
    SHORTHAND: ClassVar[str | None] = None
    RULES: ClassVar[dict[str, Rule]]

    # -- building
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The cfg defaults of this class's fields (a fresh dict)."""
        table = defaults()[cls.SECTION]
        return {name: table[cls.PREFIX + name] for name in cls.field_names()}

    @classmethod
    def build(cls, base: Any = None, /, **overrides: Any) -> Self:
        """cfg defaults, updated with ``base`` (an instance or a mapping), then ``overrides``.

        ``None`` values mean "the default"; unknown keys raise with suggestions.
        """
        values = cls.defaults()
        for source in (cls._as_mapping(base), overrides):
            for key, value in source.items():
                if key not in values:
                    raise cls._unknown(key)
                if value is not None:
                    values[key] = value
        return cls(**values)

    @classmethod
    def _as_mapping(cls, base: Any) -> Mapping[str, Any]:
        if base is None:
            return {}
        if isinstance(base, cls):
            return {name: getattr(base, name) for name in cls.field_names()}
        if isinstance(base, str) and cls.SHORTHAND:
            return {cls.SHORTHAND: base}
        if isinstance(base, Mapping):
            return base
        raise ConfigError(
            f"{cls.__name__}.build: expected a {cls.__name__} or a mapping of "
            f"{cls._where()} keys, got {type(base).__name__}"
        )

    @classmethod
    def _where(cls) -> str:
        where = f"cfg/{cls.SECTION}.yaml"
        return f"the {cls.PREFIX}* keys of {where}" if cls.PREFIX else where

    @classmethod
    def _unknown(cls, key: str) -> ConfigError:
        names = cls.field_names()
        close = difflib.get_close_matches(str(key).removeprefix(cls.PREFIX), names, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else f" Known: {', '.join(names)}."
        return ConfigError(f"unknown {cls.__name__} setting {key!r} ({cls._where()}).{hint}")

    # -- validation
    def __post_init__(self) -> None:
        rules = type(self).RULES
        missing = set(self.field_names()) ^ set(rules)
        if missing:  # a programming error in this module, not a user error
            raise TypeError(f"{type(self).__name__}: rules and fields differ on {sorted(missing)}")
        order = sorted(rules, key=lambda n: rules[n].expensive)  # stable: cheap ones first
        for name in order:
            value = getattr(self, name)
            try:
                checked = rules[name](value)
            except ConfigError as exc:  # a check that has its own message (device, method)
                raise type(exc)(f"{self.key(name)}: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{self.key(name)}: expected {exc}, got {value!r}") from None
            object.__setattr__(self, name, checked)

    @classmethod
    def key(cls, name: str) -> str:
        """The cfg key of a field, as messages name it: ``train.imgsz``, ``train.energy_country``."""
        return f"{cls.SECTION}.{cls.PREFIX}{name}"

    # -- using
    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, built and validated like any other."""
        return type(self).build(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Field values, JSON-able (tuples become lists), for manifests."""
        return {name: _plain(getattr(self, name)) for name in self.field_names()}

    def changed(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The fields (among ``names``) whose values differ from the cfg defaults."""
        base = type(self).build().to_dict()
        mine = self.to_dict()
        return {k: mine[k] for k in (names or self.field_names()) if mine[k] != base[k]}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------- the sections
class PathOrNone(Str):
    """A path (kept as given, as a string) or None: a folder the user names for the reader."""

    optional = True


@dataclass(frozen=True)
class DataSettings(Settings):
    """Dataset reading, validation and export (``cfg/data.yaml``).

    ``images`` / ``annotations`` (``--images`` / ``--annotations``) name the image and
    annotation folders (COCO: a JSON or a folder of them) of a COCO or VOC dataset whose
    layout does not say them; the readers check that they exist.
    """

    SECTION: ClassVar[str] = "data"
    RULES: ClassVar[dict[str, Rule]] = {
        "output_root": Str("a folder path"),
        "on_error": Choice(ON_ERROR_CHOICES),
        "iscrowd": Choice(("skip", "keep")),
        "coord_tolerance": Float(0.0, 0.5),
        "check_duplicates": Bool(),
        "images": PathOrNone("a folder path or null"),
        "annotations": PathOrNone("a file or folder path or null"),
        "val": PathOrNone("a dataset path or null"),
        "val_fraction": Float(
            0.0, 1.0, lo_open=True, optional=True, text="a share in (0, 1) or null"
        ),
        "val_seed": Int(0),
    }

    output_root: str
    on_error: str
    iscrowd: str
    coord_tolerance: float
    check_duplicates: bool
    images: str | None
    annotations: str | None
    val: str | None
    val_fraction: float | None
    val_seed: int


@dataclass(frozen=True)
class FeatureSettings(Settings):
    """Embedding (``cfg/features.yaml``); read by :func:`detreduce.features.embed_dataset`.

    ``None`` in ``batch_size``, ``crop_batch_size``, ``workers``, ``threads`` and
    ``image_size`` means "auto" (resolved for the device when embedding starts).
    """

    SECTION: ClassVar[str] = "features"
    RULES: ClassVar[dict[str, Rule]] = {
        "backbone": Str("a backbone name (detreduce.features.list_backbones() or a timm name)"),
        "level": Choice(FEATURE_LEVELS),
        "device": Custom(_device, "a device", expensive=True),
        "batch_size": Int(1, optional=True),
        "crop_batch_size": Int(1, optional=True),
        "workers": Int(0, optional=True),
        "threads": Int(1, optional=True),
        "image_size": Int(8, optional=True),
        "draft_decode": Bool(),
        "crop_size": Int(8),
        "crop_padding": Float(0.0, 2.0),
        "min_crop": Int(1),
        "dtype": Choice(FEATURE_DTYPES),
        "cache": Bool(),
        "cache_key": Choice(CACHE_KEYS),
        "shard_images": Int(1),
        "allow_download": Bool(),
        "runtime": Choice(RUNTIMES),
        "amp": Bool(),
        "backend": Choice(EMBED_BACKENDS),
        "ray_address": Custom(
            _ray_address, "null (this machine), auto or HOST:PORT", optional=True
        ),
        "ray_actors": Int(1, optional=True),
        "cpus_per_actor": Int(1),
    }

    backbone: str
    level: str
    device: str
    batch_size: int | None
    crop_batch_size: int | None
    workers: int | None
    threads: int | None
    image_size: int | None
    draft_decode: bool
    crop_size: int
    crop_padding: float
    min_crop: int
    dtype: str
    cache: bool
    cache_key: str
    shard_images: int
    allow_download: bool
    runtime: str
    amp: bool
    backend: str
    ray_address: str | None
    ray_actors: int | None
    cpus_per_actor: int

    #: Fields that change the embedding values (a sweep's protocol records them when changed).
    VALUE_FIELDS: ClassVar[tuple[str, ...]] = (
        "image_size", "draft_decode", "crop_size", "crop_padding", "min_crop", "dtype",
    )  # fmt: skip


@dataclass(frozen=True)
class BalanceSettings(Settings):
    """Detection-aware balance and the selection figures (``cfg/balance.yaml``).

    A bare string builds from the mode: ``BalanceSettings.build("classes")``.
    """

    SECTION: ClassVar[str] = "balance"
    SHORTHAND: ClassVar[str | None] = "mode"
    RULES: ClassVar[dict[str, Rule]] = {
        "mode": Choice(_balance_modes),
        "classes_strata": ListOf(Choice(_schemes)),
        "boxes_strata": ListOf(Choice(_schemes)),
        "count_bins": Int(1),
        "size_bins": Int(1),
        "strategy": Choice(_strategies),
        "keep_every_class": Bool(),
        "metric": Choice(_metrics),
        "count_edges": ListOf(Int(0), increasing=True),
        "size_edges": ListOf(Float(0.0), increasing=True),
    }

    mode: str
    classes_strata: tuple[str, ...]
    boxes_strata: tuple[str, ...]
    count_bins: int
    size_bins: int
    strategy: str
    keep_every_class: bool
    metric: str
    count_edges: tuple[int, ...]
    size_edges: tuple[float, ...]

    def strata(self, mode: str | None = None) -> tuple[str, ...]:
        """The strata schemes of ``mode`` (default: this mode); empty for ``none``."""
        mode = self.mode if mode is None else mode
        if mode == "none":
            return ()
        return self.classes_strata if mode == "classes" else self.boxes_strata


@dataclass(frozen=True)
class ReduceSettings(Settings):
    """``reduce_dataset`` / ``detreduce reduce`` (``cfg/reduce.yaml``).

    ``fraction``: a float is a share in (0, 1] (``1.0`` keeps everything), an int is an
    image count (``2`` keeps two images). The ``show_*`` fields size the page that
    ``detreduce show`` draws of a reduction (thumbnails, embedding map); reducing ignores them.
    """

    SECTION: ClassVar[str] = "reduce"
    RULES: ClassVar[dict[str, Rule]] = {
        "method": Custom(_method, "a method name (see `detreduce methods`)", expensive=True),
        "fraction": Custom(_budget, "a share in (0, 1] or an image count >= 1"),
        "seed": Int(0),
        "level": Choice(SELECTION_LEVELS),
        "show_per_class": Int(0),
        "show_thumb_size": Int(16),
        "show_max_points": Int(1),
    }

    method: str
    fraction: float | int
    seed: int
    level: str
    show_per_class: int
    show_thumb_size: int
    show_max_points: int

    @property
    def is_count(self) -> bool:
        """True when ``fraction`` is an image count (an int), not a share."""
        return isinstance(self.fraction, int)


@dataclass(frozen=True)
class TrainSettings(Settings):
    """YOLO training (``cfg/train.yaml`` without ``energy_*``); read by ``train_yolo``.

    ``imgsz`` must be a multiple of 32: Ultralytics rounds any other size up to a
    multiple of the model's largest stride (32; 64 for P6 models) with only a warning,
    so the run would silently train at another size than the one recorded. ``batch``
    is a fixed number of images (Ultralytics' ``-1``/fractional auto-batch is not
    deterministic and is not accepted). ``device`` is kept as typed (``auto`` stays
    ``auto`` in manifests and sweep protocols); :attr:`resolved_device` parses it.
    ``threads`` (torch CPU threads) and ``workers`` (loader processes) may be ``auto``,
    kept as typed too: :func:`detreduce.train.threads.plan_threads` resolves them when
    training starts, and the result records the values that ran.
    """

    SECTION: ClassVar[str] = "train"
    RULES: ClassVar[dict[str, Rule]] = {
        "model": Custom(_model, "a model YAML (yolov8n.yaml) or a local .pt file"),
        "epochs": Int(1),
        "imgsz": Int(32, multiple=32),
        "batch": Int(1),
        "device": Custom(_device, "a device", expensive=True),
        "seed": Int(0),
        "workers": IntOrAuto(0),
        "threads": IntOrAuto(1),
        "budget": Choice(("epochs", "steps", "converge")),
        "fraction": Float(0.0, 1.0, lo_open=True),
        "max_epoch_scale": Float(1.0),
        "max_epochs": Int(1, optional=True),
        "patience": Int(1),
        "val_every": IntOrAuto(0),
        "amp": Bool(),
        "min_optimizer_steps": Int(0),
        "verbose": Bool(),
        "allow_download": Bool(),
    }

    model: str
    epochs: int
    imgsz: int
    batch: int
    device: str
    seed: int
    workers: int | str
    threads: int | str
    budget: str
    fraction: float
    max_epoch_scale: float
    max_epochs: int | None
    patience: int
    val_every: int | str
    amp: bool
    min_optimizer_steps: int
    verbose: bool
    allow_download: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        from detreduce.train.zoo import check_model

        if self.budget == "converge" and self.val_every == 0:
            raise ConfigError(
                "train.val_every: budget=converge validates to find the plateau; "
                "set val_every >= 1 (or auto)"
            )
        check_model(self.model, self.allow_download)  # yolo11n.pt offline: says how to get it

    @property
    def curve_every(self) -> int:
        """Epochs between in-training validations (0: none, the curve is the final point).

        ``val_every: auto`` is 1 under ``budget=converge`` (the plateau needs every
        epoch) and 0 otherwise, so ``epochs``/``steps`` runs cost what they did.
        """
        if self.val_every == "auto":
            return 1 if self.budget == "converge" else 0
        return int(self.val_every)

    @property
    def resolved_device(self):
        """The :class:`detreduce.device.Device` this machine resolves ``device`` to."""
        from detreduce.device import parse_device

        return parse_device(self.device)


@dataclass(frozen=True)
class EnergySettings(Settings):
    """Energy metering (the ``energy_*`` keys of ``cfg/train.yaml``); read by ``EnergyMeter``."""

    SECTION: ClassVar[str] = "train"
    PREFIX: ClassVar[str] = "energy_"
    RULES: ClassVar[dict[str, Rule]] = {
        "country": Custom(_country, "an ISO 3166-1 alpha-3 country code such as USA or FRA"),
        "tracking_mode": Choice(_tracking_modes),
        "cpu_watts": Float(0.0, lo_open=True, optional=True, text="a power in watts > 0"),
        "measure_secs": Float(0.0, lo_open=True),
    }

    country: str
    tracking_mode: str
    cpu_watts: float | None
    measure_secs: float


@dataclass(frozen=True)
class SweepSettings(Settings):
    """Sweeps (``cfg/sweep.yaml`` without ``demo_*``); read by ``run_sweep``.

    ``methods`` are stored by their canonical catalog names (random and the full-data
    baseline are added by the grid); ``fractions`` sorted, 1.0 dropped (the full-data
    baseline always runs); ``backend`` is one of the registered trial runners.
    """

    SECTION: ClassVar[str] = "sweep"
    RULES: ClassVar[dict[str, Rule]] = {
        "methods": ListOf(Custom(_method, "method names", expensive=True), nonempty=False),
        "fractions": Custom(_fractions, "shares in (0, 1]"),
        "seeds": ListOf(Int(0)),
        "level": Choice(SELECTION_LEVELS),
        "backend": Choice(_backends),
        "retry_failed": Bool(),
        "proxy_epochs": Int(1),
        "ray_address": Custom(
            _ray_address, "null (this machine), auto or HOST:PORT", optional=True
        ),
        "cpus_per_trial": Float(0.0, lo_open=True),
        "gpus_per_trial": Float(0.0),
    }

    methods: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    level: str
    backend: str
    retry_failed: bool
    proxy_epochs: int
    ray_address: str | None
    cpus_per_trial: float
    gpus_per_trial: float


#: Every settings class, by the name of its cfg section ("energy" for train.energy_*).
SECTIONS: dict[str, type[Settings]] = {
    "data": DataSettings,
    "features": FeatureSettings,
    "balance": BalanceSettings,
    "reduce": ReduceSettings,
    "train": TrainSettings,
    "energy": EnergySettings,
    "sweep": SweepSettings,
}
