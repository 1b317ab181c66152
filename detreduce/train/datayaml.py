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
from detreduce.data.formats.datayaml import read_data_yaml
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


def resolve_data_yaml(path: str | Path) -> DataYaml:
    """Read a data YAML and resolve ``train`` and ``val`` to absolute, existing paths.

    Parsing is :func:`detreduce.data.formats.datayaml.read_data_yaml`'s: a relative
    ``path:`` is taken relative to the YAML's folder (then to the working directory);
    without ``path:`` the YAML's folder is the root.
    """
    spec = read_data_yaml(path)
    splits: dict[str, list[str]] = {}
    for split in ("train", "val"):
        resolved = spec.splits.get(split)
        if not resolved:
            raise DatasetError(
                f"{spec.source}: no '{split}:' entry (the val split is what is scored)"
            )
        missing = [str(p) for p in resolved if not p.exists()]
        if missing:
            raise DatasetError(
                f"{spec.source}: {split} path not found: {missing[0]} "
                "(paths are resolved against 'path:' or the YAML's folder; nothing is downloaded)"
            )
        splits[split] = [str(p) for p in resolved]
    return DataYaml(source=spec.source, names=spec.names, train=splits["train"], val=splits["val"])
