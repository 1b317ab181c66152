"""Atomic writes: a reader sees the old output or the complete new one, never half.

One primitive, :func:`atomic_path`, yields a temp path beside the target; whatever
writes there (text, ``np.savez``, parquet, an ONNX export, ``savefig``) becomes the
target only once it is complete and on disk: fsync, then ``os.replace``. A failure
removes the temp file and leaves the old target untouched. Temp names carry the pid
and a random part, so two processes (or threads) writing one target never share one.

Files get mode ``0o666 & ~umask``, like any file ``open`` creates: the temp file is
created with ``os.open(..., 0o666)`` and the kernel applies the umask as it stands at
that moment (``tempfile.mkstemp`` would make it ``0o600``, unreadable to the rest of a
shared workspace, and reading the umask with ``os.umask`` means setting it, which races
with other threads).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from detreduce.errors import OutputExistsError


def temp_sibling(path: str | Path, tag: str = "tmp") -> Path:
    """A fresh hidden name beside ``path`` (same folder: same file system, so the final
    rename is atomic): ``.<stem>.<pid>-<random>.<tag><suffix>``. The suffix stays last
    because some writers pick the format from it (``np.savez`` adds ``.npz``
    otherwise, ``savefig`` reads it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}.{tag}{path.suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write ``path``'s new content to; on success it replaces ``path``.

    ``with atomic_path(out) as tmp: np.savez(tmp, ...)``. The temp file exists (empty)
    when yielded, so a writer may open it by name or replace it. On an exception in the
    block it is removed and ``path`` is left as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode: umask applies
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj) -> None:
    """Write ``obj`` as indented JSON (numpy scalars, arrays and paths allowed) atomically."""
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; folders only where supported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return  # folders cannot be opened on some platforms (Windows)
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


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
        self.tmp = temp_sibling(self.final)

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
            old = temp_sibling(self.final, "old")
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
