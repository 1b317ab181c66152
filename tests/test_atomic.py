"""detreduce.data.atomic: umask-respecting modes, nothing half-written, unique temp names."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from detreduce.data.atomic import (
    AtomicDir,
    atomic_path,
    temp_sibling,
    write_bytes,
    write_json,
    write_text,
)


@pytest.fixture
def umask():
    """Set the process umask inside one test; the old one is restored after it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _savez(path) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, a=np.arange(3))  # by name: the temp name must keep the .npz suffix


WRITERS = {
    "text": lambda p: write_text(p, "x\n"),
    "bytes": lambda p: write_bytes(p, b"x"),
    "json": lambda p: write_json(p, {"a": np.int64(1)}),
    "savez": _savez,
}


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("kind", list(WRITERS))
def test_mode_follows_umask(tmp_path, umask, mask, expected, kind):
    umask(mask)
    out = tmp_path / "out.npz"
    WRITERS[kind](out)
    assert _mode(out) == expected
    WRITERS[kind](out)  # replacing an existing file
    assert _mode(out) == expected
    assert os.listdir(tmp_path) == ["out.npz"]  # no temp file left
    if kind == "savez":
        with np.load(out) as z:
            assert z["a"].tolist() == [0, 1, 2]


def test_contents_round_trip(tmp_path):
    write_text(tmp_path / "a" / "t.txt", "héllo\n")  # parent folders are made
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    write_json(tmp_path / "j.json", {"n": np.float32(0.5), "v": np.arange(2), "p": tmp_path})
    assert json.loads((tmp_path / "j.json").read_text()) == {
        "n": 0.5,
        "v": [0, 1],
        "p": str(tmp_path),
    }


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "out.json"
    write_text(out, "old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(out) as tmp:
        tmp.write_text("half of the new con")
        raise RuntimeError("disk full")
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.json"]
    with pytest.raises(TypeError):  # not JSON-serializable: fails before anything is written
        write_json(out, {"x": object()})
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["out.json"]


def test_failure_keeps_old_folder(tmp_path):
    out = tmp_path / "out"
    with AtomicDir(out) as tmp:
        write_text(tmp / "a.txt", "old")
    with pytest.raises(RuntimeError), AtomicDir(out, overwrite=True) as tmp:
        write_text(tmp / "a.txt", "new")
        raise RuntimeError
    assert (out / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_temp_names_never_collide(tmp_path):
    target = tmp_path / "embeddings.npz"
    names = {temp_sibling(target) for _ in range(10_000)}
    assert len(names) == 10_000
    name = next(iter(names))
    assert name.parent == tmp_path and name.name.startswith(".embeddings.")
    assert name.suffix == ".npz" and f".{os.getpid()}-" in name.name

    # many writers of one target at once: each reserves its own temp file; the last
    # rename wins and the target is always one complete write
    def write(i: int) -> None:
        with atomic_path(target) as tmp:
            np.savez(tmp, i=np.full(1000, i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(64)))
    with np.load(target) as z:
        assert len(set(z["i"].tolist())) == 1
    assert os.listdir(tmp_path) == ["embeddings.npz"]
