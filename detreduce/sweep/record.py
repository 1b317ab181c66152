"""The typed records at a sweep's seams: one results row, one selection's headline figures.

:class:`RunRecord` *is* the results schema: one field per ``results.csv`` column, in
file order, and the store's :data:`COLUMNS` (and which of them are numbers,
:data:`NUMERIC`, or JSON, :data:`JSON_COLUMNS`) derive from its fields' types, so adding
a field adds a column. A trial builds one and returns it; only the sweep driver
appends it (:meth:`RunRecord.to_row` → :meth:`detreduce.sweep.store.ResultsStore.append`).
:meth:`RunRecord.from_row` reads a CSV row back, from older files (missing columns
take their defaults) and newer ones (unknown columns land in ``figures``, the same
place the store puts keys an older header lacks).

:class:`SelectionSummary` holds the few selection figures worth a results column (the
histograms and per-class shares stay in ``selection.json``), read once from
:func:`detreduce.metrics.selection_figures`'s dict.
"""

from __future__ import annotations

import json
import math
import types
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from detreduce.errors import DetReduceError


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run of a sweep, as one row of ``results.csv`` (field order is column order).

    Energies are kWh (None: not measured, never a silent 0), times seconds. The
    headline ``kwh_*``/``seconds``/``co2_kg`` sum embedding (this run's share),
    selection, training and validation; ``kwh_embedding_whole`` is the embedding's
    whole cost. ``eps``/``class_share_tv`` are the selection's overall ε (at the sweep's
    level) and class box-share TV, 0 for full data. ``per_class_ap`` is mAP50-95 per
    class on val; ``figures`` holds the rest (:meth:`SelectionSummary.to_figures`,
    ``budget_capped``, ``country``) as JSON.
    """

    run_id: str
    method: str
    fraction: float
    seed: int
    status: str = "running"
    error: str = ""
    # metrics on val (final-epoch weights)
    map50: float | None = None
    map50_95: float | None = None
    precision: float | None = None
    recall: float | None = None
    # energy, kWh
    kwh_total: float | None = None
    kwh_embedding: float | None = None
    kwh_embedding_whole: float | None = None
    kwh_selection: float | None = None
    kwh_training: float | None = None
    kwh_validation: float | None = None
    kwh_cpu: float | None = None
    kwh_gpu: float | None = None
    kwh_ram: float | None = None
    co2_kg: float | None = None
    energy_mode: str = ""
    # time, seconds
    seconds: float | None = None
    seconds_embedding: float | None = None
    seconds_selection: float | None = None
    seconds_training: float | None = None
    seconds_validation: float | None = None
    # what training did
    budget: str = ""
    epochs: int | None = None
    steps: int | None = None
    images_seen: int | None = None
    # the selection
    n_train: int | None = None
    n_kept: int | None = None
    eps: float | None = None
    class_share_tv: float | None = None
    # the protocol
    model: str = ""
    imgsz: int | None = None
    batch: int | None = None
    device: str = ""
    backbone: str = ""
    balance: str = ""
    protocol: str = ""
    started_at: str = ""
    finished_at: str = ""
    # JSON columns
    per_class_ap: dict[str, float | None] | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""  # the trial's folder, relative to the sweep folder (runs/<run_id>)
    # validation curve (detreduce.train.convergence): epoch, map50, map50_95, cumulative
    # seconds_training / seconds_validation / kwh of the training phase; last, so older
    # stores (without the column) still take new rows (it lands in figures there)
    curve: list[dict[str, Any]] | None = None

    def to_row(self) -> dict[str, Any]:
        """The row :meth:`~detreduce.sweep.store.ResultsStore.append` writes (column → value)."""
        return {
            f.name: dict(v) if isinstance(v := getattr(self, f.name), dict) else v
            for f in fields(self)
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> RunRecord:
        """Parse one CSV row (strings) back: numbers, JSON columns, defaults for missing ones.

        An empty cell is the field's default (None for a number that was not measured);
        a column this version does not know is kept in ``figures`` when non-empty.
        """
        kinds = column_kinds(cls)
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, text in row.items():
            kind = kinds.get(key)
            if kind is None:
                if text not in (None, ""):
                    extra[key] = text
                continue
            value = _parse(kind, text, key, row.get("run_id", ""))
            if value is not None:
                kwargs[key] = value
        for f in fields(cls):  # a hand-written or very old file may lack even these
            if f.default is MISSING and f.default_factory is MISSING:
                kwargs.setdefault(f.name, "" if kinds[f.name] == "str" else None)
        if extra:
            kwargs["figures"] = {**kwargs.get("figures", {}), **extra}
        return cls(**kwargs)


def _kind(hint: Any) -> str:
    """``str``, ``int``, ``float`` or ``json`` for a field's type (None stripped from unions)."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    base = get_origin(hint) or hint
    if base in (int, float, str):
        return base.__name__
    if base in (dict, list):
        return "json"
    raise TypeError(f"RunRecord: no CSV form for a field of type {hint!r}")


def _parse(kind: str, text: str | None, column: str, run_id: str) -> Any:
    """One cell back to a value; None for empty (the field's default applies)."""
    if text is None or text == "":
        return None
    if kind == "str":
        return text
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DetReduceError(
                f"results row {run_id or '?'}: column {column!r} is not JSON ({exc.msg}): "
                f"{text[:80]!r}"
            ) from None
    try:
        number = float(text)  # "inf" → inf (an ε of a lost class)
    except ValueError:
        return None  # as pandas' to_numeric(errors="coerce") reads it in the frame
    if math.isnan(number):
        return None
    if kind == "int":
        return int(number) if number.is_integer() else None
    return number


@cache
def column_kinds(record_type: type = RunRecord) -> dict[str, str]:
    """Column → ``str``/``int``/``float``/``json`` of a record type, in file order (from its types)."""
    hints = get_type_hints(record_type)
    return {f.name: _kind(hints[f.name]) for f in fields(record_type)}


_KINDS = column_kinds(RunRecord)
#: Columns of ``results.csv``, in file order: the fields of :class:`RunRecord`.
COLUMNS: tuple[str, ...] = tuple(_KINDS)
#: Columns read back as numbers (fields typed int or float).
NUMERIC: tuple[str, ...] = tuple(c for c, kind in _KINDS.items() if kind in ("int", "float"))
#: Columns stored as compact JSON (fields typed dict).
JSON_COLUMNS: tuple[str, ...] = tuple(c for c, kind in _KINDS.items() if kind == "json")


# ------------------------------------------------------------------- selection
def _number(value: Any) -> float | None:
    """A figure from :func:`~detreduce.metrics.selection_figures`: ``"inf"`` → ∞, null → None."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _json_number(value: float | None) -> float | str | None:
    """Back to the figures' JSON form (∞ as ``"inf"``, so the column stays standard JSON)."""
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"


def _per_class(block: Any) -> dict[str, float | None] | None:
    if not isinstance(block, dict) or not isinstance(block.get("per_class"), dict):
        return None
    return {str(k): _number(v) for k, v in block["per_class"].items()}


def _tv(figures: dict[str, Any], key: str) -> float | None:
    block = figures.get(key)
    return _number(block.get("tv")) if isinstance(block, dict) else None


@dataclass(frozen=True)
class SelectionSummary:
    """The figures of one selection that a results row keeps.

    Attributes:
        balance: the balance mode the selection really used (``none`` for baselines).
        level: the level ``eps`` was read at: ``box`` when the sweep selects on crops
            and the figures have box-level ε, else ``image``.
        eps: overall ε (the worst class's covering radius; ∞ when a class lost every
            point, None when no embeddings were given).
        class_share_tv, box_count_tv, box_size_tv: total variation between full and
            kept class box shares, boxes-per-image histogram and box-size histogram.
        missing_classes: classes with images in the full split and none kept.
        eps_per_class, eps_box_per_class: ε per class at image and box level.
    """

    balance: str = ""
    level: str = "image"
    eps: float | None = None
    class_share_tv: float | None = None
    box_count_tv: float | None = None
    box_size_tv: float | None = None
    missing_classes: tuple[str, ...] = ()
    eps_per_class: dict[str, float | None] | None = None
    eps_box_per_class: dict[str, float | None] | None = None

    @classmethod
    def from_figures(
        cls, figures: dict[str, Any] | None, *, level: str = "image", balance: str = ""
    ) -> SelectionSummary:
        """Read :func:`detreduce.metrics.selection_figures`'s dict (absent figures → None).

        ``level="box"`` picks box-level ε (``epsilon_box``) and falls back to image
        level when the figures have none.
        """
        figures = figures or {}
        image, box = figures.get("epsilon"), figures.get("epsilon_box")
        use_box = level == "box" and isinstance(box, dict)
        block = box if use_box else image
        return cls(
            balance=balance or "",
            level="box" if use_box else "image",
            eps=_number(block.get("overall")) if isinstance(block, dict) else None,
            class_share_tv=_tv(figures, "box_share"),
            box_count_tv=_tv(figures, "box_count_hist"),
            box_size_tv=_tv(figures, "box_size_hist"),
            missing_classes=tuple(figures.get("missing_classes") or ()),
            eps_per_class=_per_class(image),
            eps_box_per_class=_per_class(box),
        )

    @classmethod
    def full_data(cls, balance: str = "") -> SelectionSummary:
        """The whole split: ε and every distance are 0 by definition (nothing is dropped)."""
        return cls(balance=balance or "", eps=0.0, class_share_tv=0.0)

    def to_figures(self) -> dict[str, Any]:
        """The ``figures`` JSON entries of a results row (keys as results.csv has them)."""
        out: dict[str, Any] = {"balance": self.balance or None}
        for key, value in (
            ("box_share_tv", self.class_share_tv),
            ("box_count_hist_tv", self.box_count_tv),
            ("box_size_hist_tv", self.box_size_tv),
        ):
            if value is not None:
                out[key] = value
        if self.missing_classes:
            out["missing_classes"] = list(self.missing_classes)
        for key, per in (
            ("epsilon_per_class", self.eps_per_class),
            ("epsilon_box_per_class", self.eps_box_per_class),
        ):
            if per is not None:
                out[key] = {k: _json_number(v) for k, v in per.items()}
        return out
