"""Parallel decode: a torch Dataset that turns image rows into uint8 network inputs.

Each item is decoded once; the whole-image input and all its box crops are cut from
that one decode, inside a DataLoader worker, so decoding runs in parallel with the
forward pass of the previous batch. Batches stay uint8 (4× less to pin and copy).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from detreduce.features import preprocess as pp


@dataclass(frozen=True)
class CropParams:
    """How box crops are cut: context ``padding`` (fraction per side), ``min_crop`` pixels."""

    size: int
    padding: float
    min_crop: int

    def key(self) -> dict:
        return {"crop_size": self.size, "crop_padding": self.padding, "min_crop": self.min_crop}


class DecodeDataset(Dataset):
    """Item ``j`` is row ``rows[j]``: its image input and/or its box crops.

    Args:
        paths: image path of every row (object array).
        sizes: declared (width, height) of every row; boxes are in these pixels and are
            rescaled if the decoded image differs (e.g. EXIF rotation).
        box_offsets: ``(n + 1,)``: the boxes of row ``r`` are
            ``box_xyxy[box_offsets[r]:box_offsets[r + 1]]``.
        box_xyxy: pixel boxes, grouped by row.
        rows: which rows to decode, in order.
        want_image, want_boxes: per row (aligned with ``paths``), what to produce.
        image_pre: whole-image preprocessing; crop: crop parameters.
        decode_factors: per row, decode at 1/factor scale (1: full size; >1 only for
            rows that want no crops, see ``preprocess.draft_factor``).
    """

    def __init__(
        self,
        paths: np.ndarray,
        sizes: np.ndarray,
        box_offsets: np.ndarray,
        box_xyxy: np.ndarray,
        rows: np.ndarray,
        want_image: np.ndarray,
        want_boxes: np.ndarray,
        image_pre: pp.Preprocess,
        crop: CropParams,
        decode_factors: np.ndarray | None = None,
    ) -> None:
        self.paths, self.sizes = paths, sizes
        self.box_offsets, self.box_xyxy = box_offsets, box_xyxy
        self.rows = rows
        self.want_image, self.want_boxes = want_image, want_boxes
        self.image_pre, self.crop = image_pre, crop
        self.decode_factors = decode_factors

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, j: int) -> dict:
        r = int(self.rows[j])
        factor = 1
        if self.decode_factors is not None and not self.want_boxes[r]:
            factor = int(self.decode_factors[r])
        img = pp.decode(str(self.paths[r]), factor)
        if factor > 1 and img is not None:
            h, w = img.shape[:2]
            if pp.input_side(w, h, self.image_pre) < self.image_pre.size:
                img = pp.decode(str(self.paths[r]))  # declared size was wrong: full decode
        item = {"row": r, "ok": img is not None, "image": None, "crops": None}
        if img is None:
            return item
        if self.want_image[r]:
            item["image"] = pp.resize_image(img, self.image_pre)
        if self.want_boxes[r]:
            boxes = self.box_xyxy[self.box_offsets[r] : self.box_offsets[r + 1]]
            w, h = (int(v) for v in self.sizes[r])
            if (img.shape[1], img.shape[0]) != (w, h) and w > 0 and h > 0:
                scale = np.array([img.shape[1] / w, img.shape[0] / h] * 2, dtype=np.float32)
                boxes = boxes * scale
            c = self.crop
            item["crops"] = pp.crop_boxes(img, boxes, c.size, c.padding, c.min_crop)
        return item


def collate(items: list[dict]) -> dict:
    """Stack a batch: image inputs of the rows that want one, all crops concatenated."""
    rows = np.array([it["row"] for it in items], dtype=np.int64)
    ok = np.array([it["ok"] for it in items], dtype=bool)
    with_image = [it for it in items if it["image"] is not None]
    with_crops = [it for it in items if it["crops"] is not None]
    images = (
        torch.from_numpy(np.stack([it["image"] for it in with_image]))
        if with_image
        else torch.empty((0, 1, 1, 3), dtype=torch.uint8)
    )
    crops = (
        torch.from_numpy(np.concatenate([it["crops"] for it in with_crops]))
        if with_crops
        else torch.empty((0, 1, 1, 3), dtype=torch.uint8)
    )
    return {
        "rows": torch.from_numpy(rows),
        "ok": torch.from_numpy(ok),
        "image_rows": torch.tensor([it["row"] for it in with_image], dtype=torch.int64),
        "images": images,
        "crop_rows": torch.tensor([it["row"] for it in with_crops], dtype=torch.int64),
        "crop_counts": torch.tensor([len(it["crops"]) for it in with_crops], dtype=torch.int64),
        "crops": crops,
    }


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)  # parallelism comes from the workers, not from OpenCV threads


@cache
def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers start from a clean forkserver, never forked from this process.

    A forked worker inherits OpenCV's and OpenMP's thread pools without their threads
    and deadlocks at its first parallel call (seen here: cv2.resize after the parent had
    decoded images). The forkserver preloads torch and OpenCV once, so each worker
    still starts in a fraction of a second.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "cv2", "numpy", "detreduce.features.dataset"])
    return ctx


def workers_can_start() -> bool:
    """False when worker processes could not re-import ``__main__`` (``python - <<EOF``).

    Forkserver and spawn workers run the main module's file again; a script read from
    stdin has none, and every worker would die at start-up.
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.exists(path)


def make_loader(
    dataset: DecodeDataset, batch_size: int, workers: int, pin_memory: bool
) -> DataLoader:
    """A DataLoader that decodes in ``workers`` processes (0: in this process)."""
    if workers > 0 and not workers_can_start():
        logging.getLogger("detreduce").info(
            "decoding in the main process: worker processes cannot start from a script "
            "read from stdin"
        )
        workers = 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers > 0 else None,
        multiprocessing_context=_worker_context() if workers > 0 else None,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )
