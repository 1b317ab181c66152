"""One in-memory model of a detection dataset, whatever format it came from.

Parallel arrays in the spirit of ``supervision.Detections``: an images table
(path, width, height, split) and a boxes table (image index, class id, pixel xyxy).
Every reader in :mod:`detreduce.data.formats` returns this, every later stage reads it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace

import numpy as np

from detreduce.data.problems import Problem

#: Split names in display order.
SPLIT_ORDER = ("train", "val", "test")
#: Which copy of a duplicated image is kept: evaluation splits win (no train/val leakage).
KEEP_PRIORITY = ("val", "test", "train")

#: COCO size buckets by box area in pixels (small < 32², medium < 96², large).
SMALL_AREA = 32**2
MEDIUM_AREA = 96**2


@dataclass
class DetectionDataset:
    """Images and boxes of a detection dataset.

    Attributes:
        names: class names; class id ``c`` is ``names[c]``.
        image_paths: absolute image paths (object array of str), one per image.
        image_sizes: ``(n, 2)`` int array of (width, height) in pixels.
        image_splits: split name of each image (object array of str).
        box_image: index into the images table of each box.
        box_class: class id of each box.
        box_xyxy: ``(m, 4)`` float32 pixel coordinates (x1, y1, x2, y2).
        format: the reader that produced it (``yolo``, ``coco``, ``voc``).
        source: the path the user gave.
        problems: every problem found while reading (the bad items are not in the tables).
        split_sources: for each split, the original location(s) it came from.
        notes: what the reader chose on purpose and the user should know, one line each
            (files skipped as not detection annotations, a dropped parent category).
    """

    names: list[str]
    image_paths: np.ndarray
    image_sizes: np.ndarray
    image_splits: np.ndarray
    box_image: np.ndarray
    box_class: np.ndarray
    box_xyxy: np.ndarray
    format: str = "yolo"
    source: str = ""
    problems: list[Problem] = field(default_factory=list)
    split_sources: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image_paths = np.asarray(self.image_paths, dtype=object).reshape(-1)
        n = len(self.image_paths)
        self.image_sizes = np.asarray(self.image_sizes, dtype=np.int64).reshape(n, 2)
        self.image_splits = np.asarray(self.image_splits, dtype=object).reshape(-1)
        self.box_image = np.asarray(self.box_image, dtype=np.int64).reshape(-1)
        m = len(self.box_image)
        self.box_class = np.asarray(self.box_class, dtype=np.int64).reshape(-1)
        self.box_xyxy = np.asarray(self.box_xyxy, dtype=np.float32).reshape(m, 4)
        if len(self.image_splits) != n:
            raise ValueError(f"image_splits has {len(self.image_splits)} rows, expected {n}")
        if len(self.box_class) != m:
            raise ValueError(f"box_class has {len(self.box_class)} rows, expected {m}")
        if m and (self.box_image.min() < 0 or self.box_image.max() >= n):
            raise ValueError("box_image holds an index outside the images table")
        if m and (self.box_class.min() < 0 or self.box_class.max() >= len(self.names)):
            raise ValueError("box_class holds a class id outside names")

    # ------------------------------------------------------------------ sizes
    @property
    def num_images(self) -> int:
        return len(self.image_paths)

    @property
    def num_boxes(self) -> int:
        return len(self.box_image)

    @property
    def splits(self) -> list[str]:
        """Split names present: train, val, test, then any other."""
        present = set(self.image_splits.tolist()) | set(self.split_sources)
        ordered = [s for s in SPLIT_ORDER if s in present]
        return ordered + sorted(present - set(SPLIT_ORDER))

    # -------------------------------------------------------------- selection
    def split_indices(self, split: str) -> np.ndarray:
        """Indices (into the images table) of the images of one split."""
        return np.flatnonzero(self.image_splits == split)

    def subset(self, image_indices: np.ndarray | list[int]) -> DetectionDataset:
        """A new dataset holding only the given images (in the given order) and their boxes."""
        idx = np.asarray(image_indices, dtype=np.int64).reshape(-1)
        remap = np.full(self.num_images, -1, dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        keep = remap[self.box_image] >= 0
        new_box_image = remap[self.box_image[keep]]
        order = np.argsort(new_box_image, kind="stable")
        return replace(
            self,
            image_paths=self.image_paths[idx],
            image_sizes=self.image_sizes[idx],
            image_splits=self.image_splits[idx],
            box_image=new_box_image[order],
            box_class=self.box_class[keep][order],
            box_xyxy=self.box_xyxy[keep][order],
            problems=list(self.problems),
            split_sources=dict(self.split_sources),
            notes=list(self.notes),
        )

    def split(self, name: str) -> DetectionDataset:
        """The images of one split and their boxes."""
        return self.subset(self.split_indices(name))

    # ------------------------------------------------------------ statistics
    def boxes_per_image(self) -> np.ndarray:
        return np.bincount(self.box_image, minlength=self.num_images)

    def box_areas(self) -> np.ndarray:
        wh = self.box_xyxy[:, 2:] - self.box_xyxy[:, :2]
        return wh[:, 0] * wh[:, 1]

    def class_box_counts(self) -> np.ndarray:
        """Boxes per class id."""
        return np.bincount(self.box_class, minlength=len(self.names))

    def class_image_counts(self) -> np.ndarray:
        """Images containing at least one box of each class id."""
        pairs = np.unique(self.box_image * len(self.names) + self.box_class)
        return np.bincount(pairs % max(len(self.names), 1), minlength=len(self.names))

    def image_class_matrix(self) -> np.ndarray:
        """``(n_images, n_classes)`` int matrix of box counts per image and class."""
        mat = np.zeros((self.num_images, len(self.names)), dtype=np.int64)
        np.add.at(mat, (self.box_image, self.box_class), 1)
        return mat

    def image_boxes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(class ids, pixel xyxy) of the boxes of image ``i``."""
        sel = self.box_image == i
        return self.box_class[sel], self.box_xyxy[sel]

    def fingerprint(self) -> str:
        """A short content hash of names, image paths, sizes, splits and boxes.

        Changes when any label or the image list changes; used to key caches and
        to tell in a manifest exactly which dataset a selection was made from. Paths
        are hashed resolved (:func:`resolved_paths`), so one folder given as a relative
        path, through a symlink or resolved has one fingerprint (and one cached YOLO
        view); ``image_paths`` and ``source`` themselves stay as the user gave them.
        The fingerprint names a location: caches that hold paths (the YOLO label view)
        key on it. What was measured keys on :meth:`content_fingerprint`.
        """
        return self._hash(resolved_paths(self.image_paths))

    def content_fingerprint(self) -> str:
        """:meth:`fingerprint` with image paths relative to the folder that holds them all.

        Moving or copying the dataset folder keeps it; renaming or relabelling an image
        changes it. A sweep's protocol keys on it, so a results store resumes wherever
        the dataset and the store live now (another checkout, another machine).
        """
        paths = resolved_paths(self.image_paths)
        if not paths:
            return self._hash([])
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
        cut = len(root.rstrip(os.sep)) + 1
        return self._hash([p[cut:].replace(os.sep, "/") for p in paths])

    def _hash(self, paths: list[str]) -> str:
        h = hashlib.blake2b(digest_size=8)
        h.update("\x1f".join(self.names).encode())
        h.update("\x1f".join(paths).encode())
        h.update("\x1f".join(self.image_splits.tolist()).encode())
        for arr in (self.image_sizes, self.box_image, self.box_class, self.box_xyxy):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        splits = ", ".join(f"{s}={int((self.image_splits == s).sum())}" for s in self.splits)
        return (
            f"DetectionDataset(format={self.format!r}, images={self.num_images} ({splits}), "
            f"boxes={self.num_boxes}, classes={len(self.names)}, problems={len(self.problems)})"
        )


#: A folder holding this many of the paths is listed once rather than ``lstat``-ed per file.
_LIST_FOLDER_FROM = 64


def resolved_paths(paths) -> list[str]:
    """``Path(p).resolve()`` of each path, as strings, computed cheaply.

    Each distinct folder is resolved once (symlinks, ``..``, a relative spelling); a file
    name is resolved further only when it is itself a symlink, which a folder holding many
    of the paths answers with one listing (``os.scandir``: the entry types come with the
    names) instead of an ``lstat`` per file. O(folders·depth + n) system calls for n paths.
    """
    paths = [os.path.split(os.fspath(p)) for p in paths]
    per_folder: dict[str, int] = {}
    for folder, _ in paths:
        per_folder[folder] = per_folder.get(folder, 0) + 1
    folders: dict[str, tuple[str, set[str] | None]] = {}
    out = []
    for folder, name in paths:
        known = folders.get(folder)
        if known is None:
            real = os.path.realpath(folder or os.curdir)
            links = _symlinks_in(real) if per_folder[folder] >= _LIST_FOLDER_FROM else None
            known = folders[folder] = (real, links)
        real, links = known
        full = os.path.join(real, name)
        if name in (os.curdir, os.pardir):
            again = True
        elif links is not None:
            again = name in links
        else:
            again = os.path.islink(full)
        out.append(os.path.realpath(full) if again else full)
    return out


def _symlinks_in(folder: str) -> set[str] | None:
    """Names of the symlinks in ``folder`` (None when it cannot be listed)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_symlink()}
    except OSError:
        return None
