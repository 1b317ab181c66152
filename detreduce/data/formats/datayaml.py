"""The one parser of Ultralytics data YAMLs: ``path:``, split entries and ``names``.

Both readers of data YAMLs use it: :func:`detreduce.data.formats.yolo.read_yolo`
(loading a dataset) and :func:`detreduce.train.datayaml.resolve_data_yaml` (handing
Ultralytics a copy with absolute paths). Paths are resolved the way Ultralytics 8.x
``check_det_dataset`` does, minus its downloads: ``path:`` (or, without it, the YAML's
folder) is the root; a relative ``path:`` is taken relative to the YAML's folder, then to
the working directory. Each split (``train``, ``val``, ``test``) is one entry or a list
of entries — an image folder, a ``.txt`` list of images or one image — joined to the
root; an entry that does not exist but starts with ``../`` is retried without that prefix
(how Roboflow exports, e.g. ``train: ../train/images``, work). ``names`` is a list or an
``{id: name}`` mapping with ids 0..n-1; ``nc`` alone gives ``class_0 .. class_{nc-1}``.
Parsing checks nothing on disk beyond the YAML itself: what must exist is the caller's
to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from detreduce.errors import DatasetError

SPLIT_KEYS = ("train", "val", "test")


@dataclass(frozen=True)
class DataYamlSpec:
    """A parsed data YAML.

    Attributes:
        source: the YAML file (absolute).
        root: the dataset root the split entries are joined to (resolved).
        names: class names, class id ``c`` is ``names[c]``.
        splits: for each split the YAML names, its entries as resolved absolute paths
            (in YAML order; they may not exist).
        raw: the YAML's mapping as read (other keys such as ``download`` are ignored).
    """

    source: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]
    raw: dict[str, Any]


def read_data_yaml(path: str | Path) -> DataYamlSpec:
    """Parse a data YAML (or the ``data.yaml`` in a folder) into a :class:`DataYamlSpec`.

    Raises:
        DatasetError: the file is missing, is not valid YAML (with its line and column),
            is not a mapping, or has bad ``names``/``nc``.
    """
    source = Path(path).absolute()
    if source.is_dir():
        source = source / "data.yaml"
    if not source.is_file():
        raise DatasetError(
            f"data YAML not found: {source} (expected an Ultralytics data.yaml with train/val/names)"
        )
    data = _load(source)
    if not isinstance(data, dict):
        raise DatasetError(f"{source}: expected a mapping with train/val/names")
    root = _root(data.get("path"), source)
    splits = {}
    for split in SPLIT_KEYS:
        entries = data.get(split)
        if entries:
            entries = entries if isinstance(entries, list) else [entries]
            splits[split] = [resolve_entry(str(e), root) for e in entries]
    return DataYamlSpec(source, root, parse_names(data, source), splits, data)


def parse_names(data: dict[str, Any], source: Path) -> list[str]:
    """``names`` as a list or an ``{id: name}`` mapping (ids 0..n-1), or ``nc`` placeholders;
    checked against ``nc`` when both are given."""
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{source}: 'names' keys must be class ids 0..n-1, got {list(names)[:5]}"
            ) from None
        if keys != list(range(len(keys))):
            raise DatasetError(f"{source}: 'names' keys must be 0..{len(keys) - 1}, got {keys}")
        names = [names[k] if k in names else names[str(k)] for k in keys]
    nc = data.get("nc")
    if nc is not None:
        try:
            nc = int(nc)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: 'nc' must be an integer, got {nc!r}") from None
    if names is None and nc is not None:
        names = [f"class_{i}" for i in range(nc)]
    if not isinstance(names, list) or not names:
        raise DatasetError(
            f"{source}: needs 'names' (a list or an id->name mapping) or 'nc', "
            f"got names: {data.get('names')!r}"
        )
    if nc is not None and nc != len(names):
        raise DatasetError(f"{source}: 'nc: {nc}' but {len(names)} names")
    return [str(n) for n in names]


def resolve_entry(entry: str, root: Path) -> Path:
    """One split entry, Ultralytics' way: under root, Roboflow's ``../`` tolerated."""
    candidate = (root / entry).resolve()
    if not candidate.exists() and entry.startswith("../"):
        stripped = (root / entry[3:]).resolve()
        if stripped.exists():
            return stripped
    return candidate


def _load(source: Path) -> Any:
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{source}: cannot read YAML ({exc})") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is None:
            raise DatasetError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from None
        problem = " ".join(f"{getattr(exc, 'problem', '') or exc}".split())
        raise DatasetError(
            f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML ({problem})"
        ) from None


def _root(given: Any, source: Path) -> Path:
    """The dataset root: ``path:`` (absolute, or under the YAML's folder, then the working
    directory) or the YAML's folder."""
    if not given:
        return source.parent.resolve()
    given = Path(str(given))
    if given.is_absolute():
        return given.resolve()
    found = next((c for c in (source.parent / given, Path.cwd() / given) if c.exists()), None)
    return (found or source.parent / given).resolve()
