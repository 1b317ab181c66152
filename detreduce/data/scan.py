"""Parallel header scans and duplicate detection over many image files."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from detreduce.data.imagefile import BadImage, image_size

_WORKERS = min(32, (os.cpu_count() or 1) * 4)  # IO bound: threads overlap the syscalls


def scan_sizes(paths: list[str]) -> list[tuple[int, int] | str]:
    """For each path, (width, height) or the reason it is not a valid image."""

    def one(p: str) -> tuple[int, int] | str:
        try:
            return image_size(p)
        except BadImage as exc:
            return str(exc)

    if len(paths) < 64:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(one, paths, chunksize=256))


def _file_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_duplicates(paths: list[str]) -> dict[int, int]:
    """Map index of each later exact-duplicate file to the index of its first copy.

    Only files whose byte sizes collide are hashed (as fdupes does), so a dataset
    without duplicates costs one ``stat`` per file.
    """
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        try:
            by_size[os.path.getsize(p)].append(i)
        except OSError:
            continue
    candidates = [i for group in by_size.values() if len(group) > 1 for i in group]
    if not candidates:
        return {}
    with ThreadPoolExecutor(_WORKERS) as pool:
        hashes = dict(zip(candidates, pool.map(lambda i: _file_hash(paths[i]), candidates)))
    first: dict[tuple[int, str], int] = {}
    dupes: dict[int, int] = {}
    for i in sorted(candidates):
        key = (os.path.getsize(paths[i]), hashes[i])
        if key in first:
            dupes[i] = first[key]
        else:
            first[key] = i
    return dupes
