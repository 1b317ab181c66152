"""Synthetic detection datasets for fast tests: shapes on textured backgrounds.

Several shape classes, controllable class imbalance, boxes per image and box sizes,
written in YOLO form (``data.yaml`` + ``images/`` + ``labels/``) and optionally COCO
form. Real photographs are what demos and benchmarks use; this is for speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from detreduce.errors import ConfigError

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
_COLORS = np.array(
    [[220, 60, 60], [60, 200, 60], [60, 90, 230], [230, 200, 40], [200, 60, 200], [40, 200, 210]]
)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(40, 200, size=3)
    gy, gx = np.mgrid[0:size, 0:size] / size
    grad = (gx * rng.uniform(-60, 60) + gy * rng.uniform(-60, 60))[..., None]
    noise = rng.normal(0, 18, size=(size, size, 3))
    img = np.clip(base + grad + noise, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):  # clutter lines
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), color, 1)
    return img


def _draw(img: np.ndarray, shape: str, box: tuple[int, int, int, int], color) -> None:
    x1, y1, x2, y2 = box
    cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, max(1, min(x2 - x1, y2 - y1) // 2)
    color = tuple(int(c) for c in color)
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, color, -1)
    elif shape == "square":
        cv2.rectangle(img, (x1, y1), (x2, y2), color, -1)
    elif shape == "triangle":
        pts = np.array([[cx, y1], [x1, y2], [x2, y2]], dtype=np.int32)
        cv2.fillPoly(img, [pts], color)
    elif shape == "cross":
        t = max(1, (x2 - x1) // 4)
        cv2.rectangle(img, (cx - t, y1), (cx + t, y2), color, -1)
        cv2.rectangle(img, (x1, cy - t), (x2, cy + t), color, -1)
    elif shape == "ring":
        cv2.circle(img, (cx, cy), r, color, max(1, r // 3))
    else:  # diamond
        pts = np.array([[cx, y1], [x2, cy], [cx, y2], [x1, cy]], dtype=np.int32)
        cv2.fillPoly(img, [pts], color)


def make_synthetic(
    out_dir: str | Path,
    n_images: int = 60,
    n_classes: int = 3,
    class_weights: list[float] | None = None,
    boxes_per_image: tuple[int, int] = (1, 4),
    box_size: tuple[float, float] = (0.15, 0.4),
    imgsz: int = 96,
    val_fraction: float = 0.25,
    background_fraction: float = 0.0,
    seed: int = 0,
    coco: bool = False,
) -> Path:
    """Write a synthetic dataset and return the path of its ``data.yaml``.

    Args:
        n_classes: shape classes used (at most ``len(SHAPES)``).
        class_weights: relative frequency of each class (imbalance); uniform if None.
        boxes_per_image: inclusive (min, max) boxes per non-background image.
        box_size: (min, max) box side as a fraction of the image side.
        background_fraction: share of images with no box at all.
        coco: also write ``annotations/instances_{train,val}.json``.
    """
    if not 1 <= n_classes <= len(SHAPES):
        raise ConfigError(f"n_classes must be in 1..{len(SHAPES)}, got {n_classes}")
    if n_images < 2:
        raise ConfigError(f"n_images must be at least 2, got {n_images}")
    weights = np.asarray(class_weights or [1.0] * n_classes, dtype=float)
    if weights.shape != (n_classes,) or (weights < 0).any() or weights.sum() <= 0:
        raise ConfigError(f"class_weights must be {n_classes} non-negative numbers")
    weights = weights / weights.sum()
    rng = np.random.default_rng(seed)
    out = Path(out_dir).absolute()
    names = list(SHAPES[:n_classes])
    n_val = max(1, int(round(n_images * val_fraction)))
    coco_docs = {s: {"images": [], "annotations": [], "categories": []} for s in ("train", "val")}
    ann_id = 0
    for i in range(n_images):
        split = "val" if i < n_val else "train"
        img = _background(rng, imgsz)
        lines = []
        n_boxes = (
            0
            if rng.random() < background_fraction
            else int(rng.integers(*boxes_per_image, endpoint=True))
        )
        for _ in range(n_boxes):
            cls = int(rng.choice(n_classes, p=weights))
            side = int(rng.uniform(*box_size) * imgsz)
            side = max(4, min(side, imgsz - 2))
            x1, y1 = (int(v) for v in rng.integers(0, imgsz - side, 2))
            x2, y2 = x1 + side, y1 + side
            _draw(img, SHAPES[cls], (x1, y1, x2, y2), _COLORS[cls] + rng.integers(-25, 25, 3))
            lines.append(
                f"{cls} {(x1 + x2) / 2 / imgsz:.6f} {(y1 + y2) / 2 / imgsz:.6f} "
                f"{side / imgsz:.6f} {side / imgsz:.6f}"
            )
            coco_docs[split]["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": f"img{i:05d}",
                    "category_id": cls + 1,
                    "bbox": [x1, y1, side, side],
                    "area": side * side,
                    "iscrowd": 0,
                }
            )
            ann_id += 1
        name = f"img{i:05d}"
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), img)
        (out / "labels" / split / f"{name}.txt").write_text(
            "\n".join(lines) + ("\n" if lines else "")
        )
        coco_docs[split]["images"].append(
            {"id": name, "file_name": f"{name}.jpg", "width": imgsz, "height": imgsz}
        )
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": names}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    if coco:
        (out / "annotations").mkdir(exist_ok=True)
        for split, doc in coco_docs.items():
            doc["categories"] = [{"id": c + 1, "name": n} for c, n in enumerate(names)]
            (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return out / "data.yaml"
