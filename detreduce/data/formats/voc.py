"""Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/``, splits in ``ImageSets/Main/*.txt``.

Class names are the sorted set of object names (VOC has no class list) unless given.
VOC pixel coordinates are 1-based: boxes are shifted by -1 as Ultralytics' VOC
converter does. Problems are located by file and the line of the ``<object>`` tag.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from detreduce.data.formats.builder import DatasetBuilder
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.errors import DatasetError

SPLIT_FILES = (("train", "train.txt"), ("val", "val.txt"), ("test", "test.txt"))


def find_voc_root(path: Path) -> Path | None:
    """The folder holding ``Annotations/`` and ``JPEGImages/`` (itself or one level down)."""
    for cand in [path, *sorted(p for p in path.iterdir() if p.is_dir())] if path.is_dir() else []:
        if (cand / "Annotations").is_dir() and (cand / "JPEGImages").is_dir():
            return cand
    return None


def _splits(root: Path) -> dict[str, list[str]]:
    main = root / "ImageSets" / "Main"
    out: dict[str, list[str]] = {}
    for split, name in SPLIT_FILES:
        f = main / name
        if f.is_file():
            out[split] = [ln.split()[0] for ln in f.read_text().splitlines() if ln.strip()]
    if "train" not in out and (main / "trainval.txt").is_file():
        out["train"] = [
            ln.split()[0] for ln in (main / "trainval.txt").read_text().splitlines() if ln.strip()
        ]
        out.pop("val", None)
    if not out:  # no split lists: every annotation is training data
        out["train"] = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    return out


def _parse_xml(xml_file: Path) -> tuple[ET.Element, list[int]]:
    text = xml_file.read_text()
    lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"<object[\s>]", text)]
    return ET.fromstring(text), lines


def read_voc(
    path: str | Path,
    log: ProblemLog,
    names: list[str] | None = None,
    check_duplicates: bool = True,
) -> DetectionDataset:
    """Read a Pascal VOC folder into a :class:`DetectionDataset`."""
    path = Path(path).absolute()
    root = find_voc_root(path)
    if root is None:
        raise DatasetError(f"{path}: not a VOC folder (no Annotations/ and JPEGImages/)")
    splits = _splits(root)

    parsed: dict[str, tuple[ET.Element | None, list[int]]] = {}
    for ids in splits.values():
        for stem in ids:
            xml_file = root / "Annotations" / f"{stem}.xml"
            if stem in parsed:
                continue
            if not xml_file.is_file():
                parsed[stem] = (None, [])
                continue
            try:
                parsed[stem] = _parse_xml(xml_file)
            except (ET.ParseError, OSError, UnicodeDecodeError) as exc:
                log.add("malformed_annotation", str(xml_file), f"cannot parse XML ({exc})")
                parsed[stem] = (None, [])
    if names is None:
        found = {
            (obj.findtext("name") or "").strip()
            for tree, _ in parsed.values()
            if tree is not None
            for obj in tree.iter("object")
        }
        names = sorted(n for n in found if n)
    class_of = {n: i for i, n in enumerate(names)}

    builder = DatasetBuilder(names, log, "voc", str(root))
    for split, ids in splits.items():
        builder.declare_split(split, str(root / "ImageSets" / "Main" / f"{split}.txt"))
        for stem in ids:
            tree, lines = parsed[stem]
            image = _image_path(root, stem, tree)
            size = _size(tree)
            idx = builder.add_image(str(image), split, size)
            if tree is not None:
                xml_file = root / "Annotations" / f"{stem}.xml"
                _add_objects(tree, lines, xml_file, idx, class_of, builder, log)
    return builder.build(check_duplicates=check_duplicates)


def _image_path(root: Path, stem: str, tree: ET.Element | None) -> Path:
    if tree is not None and tree.findtext("filename"):
        cand = root / "JPEGImages" / tree.findtext("filename").strip()
        if cand.exists():
            return cand
    for suffix in (".jpg", ".jpeg", ".png"):
        cand = root / "JPEGImages" / f"{stem}{suffix}"
        if cand.exists():
            return cand
    return root / "JPEGImages" / f"{stem}.jpg"


def _size(tree: ET.Element | None) -> tuple[int, int] | None:
    if tree is None:
        return None
    try:
        w, h = int(float(tree.findtext("size/width"))), int(float(tree.findtext("size/height")))
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _add_objects(tree, lines, xml_file, idx, class_of, builder, log) -> None:
    for k, obj in enumerate(tree.iter("object")):
        line = lines[k] if k < len(lines) else None
        name = (obj.findtext("name") or "").strip()
        if name not in class_of:
            log.add("unknown_class", str(xml_file), f"object name {name!r} not in names", line)
            continue
        try:
            x1, y1, x2, y2 = (
                float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")
            )
        except (TypeError, ValueError):
            log.add("malformed_annotation", str(xml_file), "object without a numeric bndbox", line)
            continue
        if x2 <= x1 or y2 <= y1:
            log.add(
                "degenerate_box",
                str(xml_file),
                f"zero or negative area box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) of class {name}",
                line,
            )
            continue
        builder.add_box(idx, class_of[name], (x1 - 1, y1 - 1, x2 - 1, y2 - 1))
