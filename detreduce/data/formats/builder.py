"""Assembles a :class:`DetectionDataset` from what a format reader found.

Readers add images and boxes as they parse; :meth:`DatasetBuilder.build` then reads
every image header once (sizes, validity), converts normalized boxes to pixels, drops
unreadable images and later exact duplicates, and reports empty splits.
"""

from __future__ import annotations

import numpy as np

from detreduce.data.model import KEEP_PRIORITY, DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.data.scan import find_duplicates, scan_images
from detreduce.errors import DatasetError


class DatasetBuilder:
    def __init__(self, names: list[str], log: ProblemLog, fmt: str, source: str) -> None:
        self.names = list(names)
        self.log = log
        self.format = fmt
        self.source = source
        self.paths: list[str] = []
        self.splits: list[str] = []
        self.known_sizes: list[tuple[int, int] | None] = []
        self.box_image: list[int] = []
        self.box_class: list[int] = []
        self.box_coords: list[tuple[float, float, float, float]] = []
        self.box_normalized: list[bool] = []
        self.split_sources: dict[str, list[str]] = {}
        self.notes: list[str] = []  # what the reader decided on purpose (files skipped, ...)

    def declare_split(self, split: str, source: str) -> None:
        self.split_sources.setdefault(split, []).append(source)

    def add_image(self, path: str, split: str, size: tuple[int, int] | None = None) -> int:
        self.paths.append(path)
        self.splits.append(split)
        self.known_sizes.append(size)
        return len(self.paths) - 1

    def add_box(self, image: int, cls: int, xyxy: tuple, normalized: bool = False) -> None:
        self.box_image.append(image)
        self.box_class.append(cls)
        self.box_coords.append(xyxy)
        self.box_normalized.append(normalized)

    def build(self, check_duplicates: bool = True) -> DetectionDataset:
        n = len(self.paths)
        if n == 0:
            raise DatasetError(f"{self.source}: no images found (empty dataset)")
        sizes = np.zeros((n, 2), dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        nbytes = [0] * n
        hashes: list[str | None] = [None] * n
        for i, result in enumerate(scan_images(self.paths)):
            if isinstance(result, str):
                valid[i] = False
                self.log.add("unreadable_image", self.paths[i], result)
                continue
            sizes[i] = self.known_sizes[i] or result[:2]
            nbytes[i], hashes[i] = result[2], result[3]
        if check_duplicates:
            order = sorted(
                np.flatnonzero(valid).tolist(),
                key=lambda i: (_split_rank(self.splits[i]), i),
            )
            dupes = find_duplicates(
                [self.paths[i] for i in order],
                [nbytes[i] for i in order],
                [hashes[i] for i in order],
            )
            for later, first in sorted(dupes.items()):
                i, j = order[later], order[first]
                valid[i] = False
                self.log.add(
                    "duplicate_image",
                    self.paths[i],
                    f"same bytes as {self.paths[j]} ({self.splits[j]} split); this copy skipped",
                )

        coords = np.asarray(self.box_coords, dtype=np.float64).reshape(-1, 4)
        box_image = np.asarray(self.box_image, dtype=np.int64)
        normalized = np.asarray(self.box_normalized, dtype=bool)
        if len(coords):
            wh = sizes[box_image].astype(np.float64)
            scale = np.concatenate([wh, wh], axis=1)
            coords = np.where(normalized[:, None], coords * scale, coords)
            coords = np.clip(coords, 0, scale)
        keep_img = np.flatnonzero(valid)
        remap = np.full(n, -1, dtype=np.int64)
        remap[keep_img] = np.arange(len(keep_img))
        keep_box = remap[box_image] >= 0 if len(box_image) else np.zeros(0, dtype=bool)

        for split, _ in self.split_sources.items():
            if not any(self.splits[i] == split for i in keep_img):
                srcs = ", ".join(self.split_sources[split])
                self.log.add("empty_split", srcs, f"split {split!r} has no valid images")
        if len(keep_img) == 0:
            raise DatasetError(f"{self.source}: no valid images (every image was skipped)")

        return DetectionDataset(
            names=self.names,
            image_paths=np.asarray([self.paths[i] for i in keep_img], dtype=object),
            image_sizes=sizes[keep_img],
            image_splits=np.asarray([self.splits[i] for i in keep_img], dtype=object),
            box_image=remap[box_image[keep_box]] if len(box_image) else [],
            box_class=np.asarray(self.box_class, dtype=np.int64)[keep_box]
            if len(box_image)
            else [],
            box_xyxy=coords[keep_box].astype(np.float32),
            format=self.format,
            source=self.source,
            problems=list(self.log.problems),
            split_sources=self.split_sources,
            notes=list(self.notes),
        )


def _split_rank(split: str) -> int:
    return KEEP_PRIORITY.index(split) if split in KEEP_PRIORITY else len(KEEP_PRIORITY)
