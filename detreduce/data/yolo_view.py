"""A YOLO-format view of any dataset, one per dataset fingerprint, filled as exports need it.

Ultralytics reads labels from ``.../labels/`` beside ``.../images/`` and writes
``labels/<split>.cache`` there. The view (image symlinks + clean label files written
from the validated model) lets COCO and VOC datasets train, makes skipped bad boxes
really skipped, and keeps the original dataset folder pristine.

An export adds the entries of the images it lists (its kept train images and the
val/test splits) where they are missing, so reducing COCO 2017 train to 10 % writes
17,000 entries, not 123,000: each costs two file creations, ~0.1 ms on a busy disk.
An entry is complete before it counts: its label file is written first, then the image
symlink that marks it present; a view shared by concurrent exports (sweep trials) only
ever holds complete entries. ``.complete`` is written once every image has its entry.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from detreduce.config import cache_root
from detreduce.data.atomic import write_bytes, write_text
from detreduce.data.model import DetectionDataset

logger = logging.getLogger("detreduce")

COMPLETE = ".complete"


def yolo_view(
    ds: DetectionDataset, root: Path | None = None, rows: np.ndarray | None = None
) -> tuple[Path, np.ndarray]:
    """Make sure the view holds the entries of ``rows`` (default: every image); returns
    its folder and the view path of each image (all of them, present or not).

    O(n) for the names and one listing per split folder, then O(k + m_k) for the k missing
    entries and their m_k boxes: the label lines are formatted from whole arrays (no numpy
    scalar per box) and the fingerprint is hashed once.
    """
    fingerprint = ds.fingerprint() if root is None else None
    root = Path(root) if root else cache_root() / "yolo" / fingerprint
    names = _view_names(ds)
    splits = ds.image_splits.tolist()
    base = os.fspath(root)
    view_paths = np.array(
        [os.path.join(base, "images", s, n) for s, n in zip(splits, names)], dtype=object
    )
    if (root / COMPLETE).exists():
        return root, view_paths
    present = {s: _names_in(os.path.join(base, "images", s)) for s in set(splits)}
    have = [names[i] in present[s] for i, s in enumerate(splits)]
    wanted = range(ds.num_images) if rows is None else np.unique(np.asarray(rows)).tolist()
    todo = [i for i in wanted if not have[i]]
    if todo:
        logger.info("writing YOLO labels of %d images to %s", len(todo), root)
        for split in {splits[i] for i in todo}:
            os.makedirs(os.path.join(base, "images", split), exist_ok=True)
            os.makedirs(os.path.join(base, "labels", split), exist_ok=True)
        for i, text in zip(todo, _label_texts(ds, todo)):
            stem = names[i].rsplit(".", 1)[0]
            _write_label(os.path.join(base, "labels", splits[i], stem + ".txt"), text.encode())
            try:
                os.symlink(ds.image_paths[i], view_paths[i])
            except FileExistsError:  # another export added the same entry meanwhile
                pass
    if sum(have) + len(todo) == ds.num_images:
        write_text(root / COMPLETE, fingerprint or ds.fingerprint())
    return root, view_paths


def _names_in(folder: str) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries}
    except FileNotFoundError:
        return set()


def _write_label(path: str, data: bytes) -> None:
    """Create the label file; where it exists (another export is writing it, or one died
    doing so) replace it atomically instead, so it is complete when the symlink follows."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        write_bytes(path, data)
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _label_texts(ds: DetectionDataset, rows: list[int]) -> list[str]:
    """The YOLO label file text of each image of ``rows`` (ascending): one
    ``class cx cy w h`` line per box, normalized, 6 decimals.

    The arithmetic is the per-box one, done on arrays: (x1 + x2) / 2 and x2 - x1 in
    float32 (the boxes' type), then divided by the image size in float64.
    """
    wanted = np.zeros(ds.num_images, dtype=bool)
    wanted[rows] = True
    order = np.argsort(ds.box_image, kind="stable")
    order = order[wanted[ds.box_image[order]]]
    counts = np.bincount(ds.box_image[order], minlength=ds.num_images)[rows]
    starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
    xyxy = ds.box_xyxy[order]
    wh = ds.image_sizes[ds.box_image[order]].astype(np.float64)
    columns = (
        ((xyxy[:, 0] + xyxy[:, 2]) / 2).astype(np.float64) / wh[:, 0],
        ((xyxy[:, 1] + xyxy[:, 3]) / 2).astype(np.float64) / wh[:, 1],
        (xyxy[:, 2] - xyxy[:, 0]).astype(np.float64) / wh[:, 0],
        (xyxy[:, 3] - xyxy[:, 1]).astype(np.float64) / wh[:, 1],
    )
    lines = [
        f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}"
        for c, x, y, w, h in zip(ds.box_class[order].tolist(), *(col.tolist() for col in columns))
    ]
    return ["\n".join(lines[a:b]) + "\n" if b > a else "" for a, b in zip(starts[:-1], starts[1:])]


def _view_names(ds: DetectionDataset) -> list[str]:
    """File names in the view: the original name, prefixed by the row index on a clash."""
    names, seen = [], set()
    for i, (split, path) in enumerate(zip(ds.image_splits, ds.image_paths)):
        name = os.path.basename(path)
        stem = name.rsplit(".", 1)[0]
        if (split, stem) in seen:
            name = f"{i:07d}_{name}"
            stem = name.rsplit(".", 1)[0]
        seen.add((split, stem))
        names.append(name)
    return names
