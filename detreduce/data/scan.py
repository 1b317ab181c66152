"""Parallel header scans and duplicate detection over many image files."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from detreduce.data.imagefile import BadImage, image_info

_WORKERS = min(16, (os.cpu_count() or 1) * 4)  # IO bound: threads overlap the syscalls
_CHUNK = 2048


def _scan_chunk(paths: list[str]) -> list[tuple | str]:
    out: list[tuple | str] = []
    for p in paths:
        try:
            out.append(image_info(p))
        except BadImage as exc:
            out.append(str(exc))
    return out


def scan_images(paths: list[str]) -> list[tuple[int, int, int, str | None] | str]:
    """For each path, (width, height, bytes, hash or None) or why it is not a valid image."""
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if len(chunks) <= 1:
        return _scan_chunk(paths)
    with ThreadPoolExecutor(_WORKERS) as pool:
        return [r for part in pool.map(_scan_chunk, chunks) for r in part]


def _file_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_duplicates(
    paths: list[str], sizes: list[int], hashes: list[str | None] | None = None
) -> dict[int, int]:
    """Map index of each later exact-duplicate file to the index of its first copy.

    Only files whose byte sizes collide are hashed (as fdupes does), and hashes
    already computed during the header scan are reused, so a dataset without
    duplicates costs nothing beyond the scan.
    """
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, size in enumerate(sizes):
        by_size[size].append(i)
    candidates = [i for group in by_size.values() if len(group) > 1 for i in group]
    if not candidates:
        return {}
    known = hashes or [None] * len(paths)
    todo = [i for i in candidates if known[i] is None]
    computed: dict[int, str] = {}
    if todo:
        with ThreadPoolExecutor(_WORKERS) as pool:
            computed = dict(zip(todo, pool.map(lambda i: _file_hash(paths[i]), todo)))
    first: dict[tuple[int, str], int] = {}
    dupes: dict[int, int] = {}
    for i in sorted(candidates):
        key = (sizes[i], known[i] or computed[i])
        if key in first:
            dupes[i] = first[key]
        else:
            first[key] = i
    return dupes
