"""COCO instances JSON + image folder.

Category ids (any integers, e.g. starting at 1) map to contiguous class ids in
ascending id order, names kept. Image ids may be strings. ``iscrowd`` boxes are
skipped by default (and counted), or kept with ``iscrowd="keep"``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from detreduce.data.formats.builder import DatasetBuilder
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.errors import ConfigError, DatasetError

ISCROWD_CHOICES = ("skip", "keep")


def find_coco_files(path: Path) -> dict[str, Path]:
    """``{split: json}`` for a JSON file or a folder holding ``annotations/*.json``."""
    if path.is_file():
        return {_split_of(path): path}
    ann = path / "annotations"
    files = sorted(ann.glob("*.json")) if ann.is_dir() else sorted(path.glob("*.json"))
    return {_split_of(f): f for f in files}


def _split_of(json_file: Path) -> str:
    stem = json_file.stem.lower()
    for split, keys in (("train", ("train",)), ("val", ("val", "valid")), ("test", ("test",))):
        if any(k in stem for k in keys):
            return split
    return "train"


def _image_dir(json_file: Path, split: str, root: Path) -> Path:
    base = json_file.parent.parent if json_file.parent.name == "annotations" else json_file.parent
    for cand in (base / "images" / split, base / split, base / "images", base):
        if cand.is_dir():
            return cand
    return root


def read_coco(
    path: str | Path,
    log: ProblemLog,
    iscrowd: str = "skip",
    check_duplicates: bool = True,
    image_dir: str | Path | None = None,
) -> DetectionDataset:
    """Read one COCO JSON, or every ``annotations/*.json`` of a folder (one split each)."""
    if iscrowd not in ISCROWD_CHOICES:
        raise ConfigError(f"iscrowd must be one of {', '.join(ISCROWD_CHOICES)}, got {iscrowd!r}")
    path = Path(path).absolute()
    files = find_coco_files(path)
    if not files:
        raise DatasetError(f"{path}: no COCO JSON found (expected annotations/*.json)")
    docs = {}
    for split, f in files.items():
        try:
            docs[split] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{f}: cannot read COCO JSON ({exc})") from None
        if not isinstance(docs[split], dict) or "images" not in docs[split]:
            raise DatasetError(f"{f}: not a COCO instances JSON (no 'images' list)")

    cat_names: dict[int, str] = {}
    for split, doc in docs.items():
        for cat in doc.get("categories", []):
            cid = cat.get("id")
            if cid in cat_names and cat_names[cid] != cat.get("name"):
                raise DatasetError(
                    f"{files[split]}: category id {cid} is {cat.get('name')!r} here "
                    f"but {cat_names[cid]!r} in another split"
                )
            cat_names[cid] = str(cat.get("name"))
    if not cat_names:
        raise DatasetError(f"{path}: no categories in the COCO JSON")
    cat_to_class = {cid: i for i, cid in enumerate(sorted(cat_names))}
    names = [cat_names[cid] for cid in sorted(cat_names)]

    builder = DatasetBuilder(names, log, "coco", str(path))
    for split, doc in docs.items():
        f = files[split]
        folder = Path(image_dir) if image_dir else _image_dir(f, split, path)
        builder.declare_split(split, str(f))
        id_to_index: dict = {}
        for img in doc["images"]:
            try:
                file_name, img_id = img["file_name"], img["id"]
            except (KeyError, TypeError):
                log.add("malformed_annotation", str(f), f"image entry without file_name/id: {img}")
                continue
            w, h = img.get("width"), img.get("height")
            size = (int(w), int(h)) if w and h else None
            id_to_index[img_id] = builder.add_image(str(folder / file_name), split, size)
        for ann in doc.get("annotations", []):
            _add_annotation(ann, f, id_to_index, cat_to_class, builder, log, iscrowd)
    return builder.build(check_duplicates=check_duplicates)


def _add_annotation(ann, f, id_to_index, cat_to_class, builder, log, iscrowd) -> None:
    aid = ann.get("id", "?") if isinstance(ann, dict) else "?"
    where = f"annotation id {aid}"
    if not isinstance(ann, dict) or "bbox" not in ann or "image_id" not in ann:
        log.add("malformed_annotation", str(f), f"{where}: missing bbox or image_id")
        return
    if ann["image_id"] not in id_to_index:
        log.add("unknown_image_id", str(f), f"{where}: image id {ann['image_id']!r} not in images")
        return
    if ann.get("category_id") not in cat_to_class:
        log.add(
            "unknown_category", str(f), f"{where}: category id {ann.get('category_id')!r} unknown"
        )
        return
    if ann.get("iscrowd", 0) and iscrowd == "skip":
        log.add("crowd_box", str(f), f"{where}: iscrowd=1 skipped")
        return
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (TypeError, ValueError):
        log.add("malformed_annotation", str(f), f"{where}: bbox {ann['bbox']!r} is not 4 numbers")
        return
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        log.add("malformed_annotation", str(f), f"{where}: non-finite bbox {ann['bbox']!r}")
        return
    if w <= 0 or h <= 0:
        log.add("degenerate_box", str(f), f"{where}: zero or negative area bbox {ann['bbox']!r}")
        return
    builder.add_box(
        id_to_index[ann["image_id"]], cat_to_class[ann["category_id"]], (x, y, x + w, y + h)
    )
