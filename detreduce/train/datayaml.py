"""Resolve an Ultralytics data YAML to absolute paths before Ultralytics sees it.

Ultralytics resolves a missing relative ``path:`` under the user's ``DATASETS_DIR`` and,
when the val images are missing, runs the YAML's ``download:`` (a URL, a shell command
or Python code). Resolving the paths here, checking they exist and handing Ultralytics a
copy with absolute paths makes a run depend on the YAML alone, never on downloads or
the working directory; the copy in the run folder also records what was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from detreduce.data.atomic import write_text
from detreduce.errors import DatasetError


@dataclass(frozen=True)
class DataYaml:
    """A data YAML with every split as a list of absolute, existing paths."""

    source: Path
    names: list[str]
    train: list[str]
    val: list[str]

    def write(self, path: Path) -> Path:
        """Write the resolved YAML (absolute paths, no ``download:``) and return its path."""
        data: dict[str, Any] = {
            "train": self.train if len(self.train) > 1 else self.train[0],
            "val": self.val if len(self.val) > 1 else self.val[0],
            "nc": len(self.names),
            "names": dict(enumerate(self.names)),
        }
        write_text(path, f"# resolved from {self.source}\n" + yaml.safe_dump(data, sort_keys=False))
        return path


def _names(data: dict[str, Any], source: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: 'names' keys must be class ids 0..n-1") from None
        if keys != list(range(len(keys))):
            raise DatasetError(f"{source}: 'names' keys must be 0..{len(keys) - 1}, got {keys}")
        names = [names[k] if k in names else names[str(k)] for k in keys]
    if names is None and isinstance(data.get("nc"), int):
        names = [f"class_{i}" for i in range(data["nc"])]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{source}: needs 'names' (a list or an id->name mapping) or 'nc'")
    if "nc" in data and data["nc"] is not None and int(data["nc"]) != len(names):
        raise DatasetError(f"{source}: 'nc: {data['nc']}' but {len(names)} names")
    return [str(n) for n in names]


def _resolve(entry: str, root: Path) -> Path:
    """One split entry, Ultralytics' way: under root, Roboflow's '../' tolerated."""
    candidate = (root / entry).resolve()
    if not candidate.exists() and entry.startswith("../"):
        stripped = (root / entry[3:]).resolve()
        if stripped.exists():
            return stripped
    return candidate


def resolve_data_yaml(path: str | Path) -> DataYaml:
    """Read a data YAML and resolve ``train`` and ``val`` to absolute, existing paths.

    A relative ``path:`` is taken relative to the YAML's folder (then to the working
    directory); without ``path:`` the YAML's folder is the root.
    """
    source = Path(path).absolute()
    if source.is_dir():
        source = source / "data.yaml"
    if not source.is_file():
        raise DatasetError(
            f"data YAML not found: {source} (expected an Ultralytics data.yaml with train/val/names)"
        )
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DatasetError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{source}: expected a mapping with train/val/names")
    root = source.parent
    if data.get("path"):
        given = Path(str(data["path"]))
        root = (
            given
            if given.is_absolute()
            else next(
                (c for c in ((source.parent / given), (Path.cwd() / given)) if c.exists()),
                source.parent / given,
            )
        )
    splits: dict[str, list[str]] = {}
    for split in ("train", "val"):
        entries = data.get(split)
        if not entries:
            raise DatasetError(f"{source}: no '{split}:' entry (the val split is what is scored)")
        entries = entries if isinstance(entries, list) else [entries]
        resolved = [_resolve(str(e), root) for e in entries]
        missing = [str(p) for p in resolved if not p.exists()]
        if missing:
            raise DatasetError(
                f"{source}: {split} path not found: {missing[0]} "
                "(paths are resolved against 'path:' or the YAML's folder; nothing is downloaded)"
            )
        splits[split] = [str(p) for p in resolved]
    return DataYaml(
        source=source, names=_names(data, source), train=splits["train"], val=splits["val"]
    )
