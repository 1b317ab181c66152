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
        #: boxes added in bulk (image, class, xyxy, normalized arrays), in order with the above
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
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

    def add_boxes(
        self, image: np.ndarray, cls: np.ndarray, xyxy: np.ndarray, normalized: bool = False
    ) -> None:
        """Add many boxes at once (``(m,)``, ``(m,)``, ``(m, 4)``): what :meth:`add_box`
        does m times, without a Python object per box."""
        self._flush()
        image = np.asarray(image, dtype=np.int64).reshape(-1)
        self._blocks.append(
            (
                image,
                np.asarray(cls, dtype=np.int64).reshape(-1),
                np.asarray(xyxy, dtype=np.float64).reshape(-1, 4),
                np.full(len(image), normalized, dtype=bool),
            )
        )

    def _flush(self) -> None:
        """Move the boxes added one by one into a block, keeping the order of addition."""
        if self.box_image:
            self._blocks.append(
                (
                    np.asarray(self.box_image, dtype=np.int64),
                    np.asarray(self.box_class, dtype=np.int64),
                    np.asarray(self.box_coords, dtype=np.float64).reshape(-1, 4),
                    np.asarray(self.box_normalized, dtype=bool),
                )
            )
            self.box_image, self.box_class, self.box_coords, self.box_normalized = [], [], [], []

    def _boxes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._flush()
        if not self._blocks:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros((0, 4)), np.zeros(0, dtype=bool)
        if len(self._blocks) > 1:
            self._blocks = [tuple(np.concatenate(parts) for parts in zip(*self._blocks))]
        return self._blocks[0]

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

        box_image, box_class, coords, normalized = self._boxes()
        if len(coords):
            wh = sizes[box_image].astype(np.float64)
            scale = np.concatenate([wh, wh], axis=1)
            coords = np.where(normalized[:, None], coords * scale, coords)
            coords = np.clip(coords, 0, scale)
        keep_img = np.flatnonzero(valid)
        remap = np.full(n, -1, dtype=np.int64)
        remap[keep_img] = np.arange(len(keep_img))
        keep_box = remap[box_image] >= 0 if len(box_image) else np.zeros(0, dtype=bool)

        kept_splits = {self.splits[i] for i in keep_img.tolist()}
        for split, _ in self.split_sources.items():
            if split not in kept_splits:
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
            box_class=box_class[keep_box] if len(box_image) else [],
            box_xyxy=coords[keep_box].astype(np.float32),
            format=self.format,
            source=self.source,
            problems=list(self.log.problems),
            split_sources=self.split_sources,
            notes=list(self.notes),
        )


def _split_rank(split: str) -> int:
    return KEEP_PRIORITY.index(split) if split in KEEP_PRIORITY else len(KEEP_PRIORITY)
