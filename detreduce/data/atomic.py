"""Atomic writes: a reader sees the old output or the complete new one, never half."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from detreduce.errors import OutputExistsError


def write_text(path: str | Path, text: str) -> None:
    """Write a file through a temp file in the same folder, then rename over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class AtomicDir:
    """Build a folder under a temp name, rename it into place on success.

    ``with AtomicDir(out, overwrite) as tmp: ...write into tmp...`` — on an exception
    the temp folder is removed and an existing ``out`` is left untouched.
    """

    def __init__(self, final: str | Path, overwrite: bool = False) -> None:
        self.final = Path(final).absolute()
        self.overwrite = overwrite
        self.tmp = self.final.parent / f".{self.final.name}.tmp-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        if self.final.exists() and not self.overwrite:
            raise OutputExistsError(f"{self.final} exists; pass --overwrite to replace it")
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
