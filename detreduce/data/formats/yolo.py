"""Ultralytics YOLO datasets: a data YAML, image folders or lists, ``labels/*.txt``.

The YAML (``path:``, split entries, ``names``) is parsed by
:mod:`detreduce.data.formats.datayaml`, which resolves paths the way Ultralytics 8.x
``check_det_dataset`` does (Roboflow's ``../`` entries included). Labels are found by
replacing the last ``/images/`` of an image path with ``/labels/`` and the suffix with
``.txt``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from detreduce.data.formats.builder import DatasetBuilder
from detreduce.data.formats.datayaml import SPLIT_KEYS, read_data_yaml
from detreduce.data.imagefile import IMAGE_SUFFIXES, is_image_file
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.errors import DatasetError


def label_path(image_path: str) -> str:
    """The label file Ultralytics reads for an image path."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(image_path.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"


def _images_of(source: Path, yaml_file: Path) -> list[str]:
    if source.is_dir():
        suffixes = tuple(IMAGE_SUFFIXES)
        return sorted(
            os.path.join(d, f)
            for d, _, files in os.walk(source)
            for f in files
            if f.lower().endswith(suffixes)
        )
    if source.is_file() and source.suffix == ".txt":
        parent = str(source.parent) + os.sep
        out = []
        for line in source.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            p = line.replace("./", parent, 1) if line.startswith("./") else line
            if not os.path.isabs(p):
                p = str((source.parent / p).resolve())
            out.append(p)
        return sorted(p for p in out if is_image_file(p))
    if source.is_file() and is_image_file(source):
        return [str(source)]
    raise DatasetError(f"{yaml_file}: split source {source} does not exist")


def read_yolo(
    yaml_file: str | Path, log: ProblemLog, tolerance: float = 0.01, check_duplicates: bool = True
) -> DetectionDataset:
    """Read a YOLO data YAML into a :class:`DetectionDataset`."""
    spec = read_data_yaml(yaml_file)
    yaml_file, root, names = spec.source, spec.root, spec.names
    if not root.exists():
        raise DatasetError(
            f"{yaml_file}: 'path: {spec.raw.get('path')}' does not exist (resolved {root})"
        )

    builder = DatasetBuilder(names, log, "yolo", str(yaml_file))
    label_dirs: set[str] = set()
    seen_images: set[str] = set()
    for split in SPLIT_KEYS:
        for source in spec.splits.get(split, []):
            builder.declare_split(split, str(source))
            images = _images_of(source, yaml_file)
            if source.is_dir():
                label_dirs.add(label_path(str(source / "x.jpg")).rsplit(os.sep, 1)[0])
            for img in images:
                if img in seen_images:
                    continue
                seen_images.add(img)
                idx = builder.add_image(img, split)
                _read_label_file(label_path(img), idx, len(names), builder, log, tolerance)
    _report_orphan_labels(label_dirs, seen_images, log)
    return builder.build(check_duplicates=check_duplicates)


def _read_label_file(
    path: str, image: int, nc: int, builder: DatasetBuilder, log: ProblemLog, tol: float
) -> None:
    try:
        with open(path, "rb") as f:
            text = f.read().decode()
    except FileNotFoundError:
        return  # no label file: a background image, as in Ultralytics
    except (OSError, UnicodeDecodeError) as exc:
        log.add("malformed_line", path, f"cannot read label file ({exc})")
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
            log.add(
                "malformed_line",
                path,
                f"expected 5 fields 'class cx cy w h' (or a polygon), got {len(fields)}",
                lineno,
            )
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            log.add("malformed_line", path, f"non-numeric value in {line.strip()!r}", lineno)
            continue
        if not all(math.isfinite(v) for v in values):
            log.add("malformed_line", path, f"non-finite value in {line.strip()!r}", lineno)
            continue
        cls_value = values[0]
        if not cls_value.is_integer() or not 0 <= cls_value < nc:
            log.add(
                "unknown_class",
                path,
                f"class id {fields[0]} not in names (0..{nc - 1})",
                lineno,
            )
            continue
        coords = values[1:]
        if len(coords) == 4 and (coords[2] <= 0 or coords[3] <= 0):
            log.add("degenerate_box", path, f"zero or negative area box {line.strip()!r}", lineno)
            continue
        if any(v < -tol or v > 1 + tol for v in coords):
            log.add(
                "coords_out_of_range",
                path,
                f"normalized coordinate outside [0, 1] (tolerance {tol}): {line.strip()!r}",
                lineno,
            )
            continue
        if len(coords) == 4:
            cx, cy, w, h = coords
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        else:  # polygon: its bounding box, as Ultralytics' segments2boxes
            xs, ys = coords[0::2], coords[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        if x2 - x1 <= 0 or y2 - y1 <= 0:  # a flat polygon
            log.add("degenerate_box", path, f"zero or negative area box {line.strip()!r}", lineno)
            continue
        builder.add_box(image, int(cls_value), (x1, y1, x2, y2), normalized=True)


def _report_orphan_labels(label_dirs: set[str], images: set[str], log: ProblemLog) -> None:
    expected = {label_path(p) for p in images}
    for d in sorted(label_dirs):
        if not os.path.isdir(d):
            continue
        for dirpath, _, files in sorted(os.walk(d)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                if name.endswith(".txt") and path not in expected:
                    log.add("label_without_image", path, "no image with this stem")
