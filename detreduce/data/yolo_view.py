"""A YOLO-format view of any dataset, built once per dataset fingerprint.

Ultralytics reads labels from ``.../labels/`` beside ``.../images/`` and writes
``labels/<split>.cache`` there. The view (image symlinks + clean label files written
from the validated model) lets COCO and VOC datasets train, makes skipped bad boxes
really skipped, and keeps the original dataset folder pristine.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from detreduce.config import cache_root
from detreduce.data.atomic import temp_sibling
from detreduce.data.model import DetectionDataset

logger = logging.getLogger("detreduce")

COMPLETE = ".complete"


def yolo_view(ds: DetectionDataset, root: Path | None = None) -> tuple[Path, np.ndarray]:
    """Build (or reuse) the view; returns its folder and the view path of each image."""
    root = Path(root) if root else cache_root() / "yolo" / ds.fingerprint()
    names = _view_names(ds)
    view_paths = np.array(
        [str(root / "images" / s / n) for s, n in zip(ds.image_splits, names)], dtype=object
    )
    if (root / COMPLETE).exists():
        return root, view_paths
    tmp = temp_sibling(root)
    logger.info("writing YOLO label view of %d images to %s", ds.num_images, root)
    order = np.argsort(ds.box_image, kind="stable")
    starts = np.searchsorted(ds.box_image[order], np.arange(ds.num_images + 1))
    try:
        for split in set(ds.image_splits.tolist()):
            (tmp / "images" / split).mkdir(parents=True, exist_ok=True)
            (tmp / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(ds.num_images):
            split, name = ds.image_splits[i], names[i]
            os.symlink(ds.image_paths[i], tmp / "images" / split / name)
            rows = order[starts[i] : starts[i + 1]]
            w, h = ds.image_sizes[i]
            lines = []
            for b in rows:
                x1, y1, x2, y2 = ds.box_xyxy[b]
                lines.append(
                    f"{ds.box_class[b]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                    f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
                )
            label = tmp / "labels" / split / (name.rsplit(".", 1)[0] + ".txt")
            label.write_text("\n".join(lines) + ("\n" if lines else ""))
        (tmp / COMPLETE).write_text(ds.fingerprint())
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished the same view first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root, view_paths


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
