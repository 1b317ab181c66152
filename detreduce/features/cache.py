"""On-disk embedding cache: append-only shards keyed per image.

A store is one folder per (backbone, weights hash, preprocessing, dtype), under
``cache_root()/embeddings/``. Each shard is an ``.npz`` holding ``keys`` (one per
image: a hash of path + size + mtime, or of the bytes), ``counts`` (rows per key: 1 for
an image vector, the number of boxes for crops) and ``data`` (the rows). Shards are
written whole under a temp name and renamed, so a killed run leaves only complete
shards, and the next run recomputes only images whose key is in none of them. Reading
back loads one shard at a time: memory stays one shard above the output array.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from detreduce.config import cache_root
from detreduce.data.atomic import atomic_path, write_text

logger = logging.getLogger("detreduce")
KEY_DTYPE = "S32"
FORMAT_VERSION = 1


def image_key(path: str, mode: str = "stat") -> bytes:
    """A 32-hex-digit key that changes when the image file changes.

    ``stat``: path + byte size + mtime (one ``stat`` call); ``content``: a hash of the
    bytes (robust to touch/copy, reads the whole file).
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(path.encode())
    if mode == "content":
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        st = os.stat(path)
        h.update(f"\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest().encode()


def derived_key(key: bytes, payload: bytes) -> bytes:
    """A key for data derived from an image and extra inputs (its boxes)."""
    return hashlib.blake2b(key + payload, digest_size=16).hexdigest().encode()


def store_dir(kind: str, params: dict) -> Path:
    """The folder of a store: readable backbone name + a hash of every parameter."""
    blob = json.dumps({"kind": kind, "v": FORMAT_VERSION, **params}, sort_keys=True, default=str)
    digest = hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(params.get("backbone")))
    return cache_root() / "embeddings" / f"{name}-{kind}-{digest}"


class ShardStore:
    """Append-only shards of ``(key, rows)`` records; see the module docstring."""

    def __init__(self, root: Path, params: dict, dim: int, dtype: str) -> None:
        self.root, self.dim, self.dtype = Path(root), dim, np.dtype(dtype)
        self.root.mkdir(parents=True, exist_ok=True)
        meta = self.root / "meta.json"
        if not meta.exists():
            write_text(meta, json.dumps(params, indent=2, default=str))
        self.shards: list[Path] = []
        self.index: dict[bytes, tuple[int, int, int]] = {}
        self._refresh()

    def _refresh(self) -> None:
        """Read every shard's keys (not its data) into ``key -> (shard, offset, count)``."""
        self.shards = sorted(self.root.glob("shard-*.npz"))
        self.index = {}
        for s, path in enumerate(self.shards):
            try:
                with np.load(path) as z:
                    keys, counts = z["keys"], z["counts"]
            except Exception as exc:  # noqa: BLE001 - a damaged shard is only a cache miss
                logger.warning("ignoring unreadable cache shard %s (%s)", path, exc)
                continue
            offsets = np.concatenate([[0], np.cumsum(counts)])
            for i, k in enumerate(keys.tolist()):
                self.index[k] = (s, int(offsets[i]), int(counts[i]))

    def __contains__(self, key: bytes) -> bool:
        return key in self.index

    def read(self, keys: Iterable[bytes], sink) -> None:
        """Call ``sink(key, rows)`` for every cached key, loading one shard at a time."""
        by_shard: dict[int, list[bytes]] = {}
        for k in keys:
            by_shard.setdefault(self.index[k][0], []).append(k)
        for s, ks in sorted(by_shard.items()):
            with np.load(self.shards[s]) as z:
                data = z["data"]
            for k in ks:
                _, off, cnt = self.index[k]
                sink(k, data[off : off + cnt])
            del data

    def writer(self, flush_every: int) -> ShardWriter:
        return ShardWriter(self, flush_every)


class ShardWriter:
    """Buffers records and writes a shard every ``flush_every`` keys (and on close)."""

    def __init__(self, store: ShardStore, flush_every: int) -> None:
        self.store, self.flush_every = store, max(1, flush_every)
        self.keys: list[bytes] = []
        self.blocks: list[np.ndarray] = []
        self.written = 0

    def add(self, key: bytes, rows: np.ndarray) -> None:
        self.keys.append(key)
        self.blocks.append(np.asarray(rows, dtype=self.store.dtype).reshape(-1, self.store.dim))
        if len(self.keys) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self.keys:
            return
        counts = np.array([len(b) for b in self.blocks], dtype=np.int64)
        data = (
            np.concatenate(self.blocks)
            if counts.sum()
            else np.zeros((0, self.store.dim), self.store.dtype)
        )
        name = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        path = self.store.root / name
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(self.keys, dtype=KEY_DTYPE), counts=counts, data=data)
        self.written += len(self.keys)
        self.keys, self.blocks = [], []
