"""Pascal VOC: XML annotations, an image folder, splits in ``ImageSets/Main/*.txt``.

Layouts found from the path (folder names matched in any case):

- ``Annotations/`` + ``JPEGImages/`` (or ``images/``), splits from ``ImageSets/Main``
  (``train.txt``, ``val.txt``, ``test.txt``; ``trainval.txt`` when there is no train list);
- XML files beside the images (LabelImg's output), in the folder or in its ``images/``;
- split folders ``train/``, ``valid/``, ``test/`` each holding one of the above (Roboflow);
- the folder itself or one level down (``VOCdevkit/VOC2012``).

``images`` / ``annotations`` (``--images`` / ``--annotations``) name the folders where the
layout is none of these, as supervision's ``from_pascal_voc(images_directory_path,
annotations_directory_path)`` takes them. Without split lists every image is train data
(one without an XML is a background image). With split lists, a listed id without an XML
is a ``missing_annotation`` problem (list file and line), and an id listed in two splits
is a ``split_overlap`` (leakage; the evaluation split keeps it).

Class names are the sorted set of object names (VOC has no class list) unless given.
VOC pixel coordinates are 1-based: boxes are shifted by -1 as Ultralytics' VOC
converter does. Problems are located by file and the line of the ``<object>`` tag.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from detreduce.data.formats.builder import DatasetBuilder
from detreduce.data.imagefile import IMAGE_SUFFIXES
from detreduce.data.model import KEEP_PRIORITY, DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.errors import DatasetError

SPLIT_FILES = (("train", "train.txt"), ("val", "val.txt"), ("test", "test.txt"))
ANNOTATION_DIRS = ("annotations", "annotation")
IMAGE_DIRS = ("jpegimages", "images")
#: Split folder names (any case) → split.
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


@dataclass(frozen=True)
class VocPart:
    """One folder of XML files and the folder of their images (None: not found)."""

    annotations: Path
    images: Path | None
    split: str | None = None  # None: splits from ImageSets/Main, else every image is train


@dataclass(frozen=True)
class VocLayout:
    """Where a VOC dataset's pieces are."""

    root: Path
    parts: tuple[VocPart, ...]
    lists: Path | None = None  # ImageSets/Main


def _child(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The sub-folder of ``folder`` named one of ``names`` in any case (first name wins)."""
    try:
        with os.scandir(folder) as it:  # names first: no stat of the files of a big folder
            subdirs = {e.name.lower(): e.name for e in it if e.name.lower() in names and e.is_dir()}
    except OSError:
        return None
    return next((folder / subdirs[n] for n in names if n in subdirs), None)


def _holds(folder: Path | None, suffixes: set[str] | tuple[str, ...]) -> bool:
    """Whether ``folder`` holds a file with one of ``suffixes`` (stops at the first)."""
    if folder is None:
        return False
    try:
        with os.scandir(folder) as it:
            return any(os.path.splitext(e.name)[1].lower() in suffixes for e in it)
    except OSError:
        return False


def _probe(folder: Path) -> VocPart | None:
    """The VOC part in ``folder``: ``Annotations/`` (+ an image folder), or XML beside images."""
    ann = _child(folder, ANNOTATION_DIRS)
    if ann is not None and _holds(ann, (".xml",)):
        images = _child(folder, IMAGE_DIRS)
        if images is None and _holds(ann, IMAGE_SUFFIXES):
            images = ann
        return VocPart(ann, images)
    images = _child(folder, IMAGE_DIRS)
    if images is not None and _holds(images, (".xml",)) and _holds(images, IMAGE_SUFFIXES):
        return VocPart(images, images)
    if _holds(folder, (".xml",)) and _holds(folder, IMAGE_SUFFIXES):
        return VocPart(folder, folder)
    return None


def _lists_dir(root: Path) -> Path | None:
    sets = _child(root, ("imagesets",))
    return _child(sets, ("main",)) if sets is not None else None


def find_voc_layout(
    path: str | Path, images: str | Path | None = None, annotations: str | Path | None = None
) -> VocLayout | None:
    """The VOC layout at ``path`` (None when it is not one), ``images`` / ``annotations``
    overriding the folders found."""
    path = Path(path).absolute()
    img_dir = _folder(images, "images") if images is not None else None
    if annotations is not None:
        ann = _folder(annotations, "annotations")
        if img_dir is None:
            near = [_child(ann.parent, IMAGE_DIRS), path if path.is_dir() else None, ann]
            img_dir = next((p for p in near if p is not None and _holds(p, IMAGE_SUFFIXES)), None)
        root = ann.parent
        lists = _lists_dir(root) or (_lists_dir(path) if path.is_dir() else None)
        return VocLayout(root, (VocPart(ann, img_dir),), lists)
    layout = _find(path) if path.is_dir() else None
    if img_dir is None:
        return layout
    if layout is None:
        if not _holds(img_dir, (".xml",)):
            return None
        return VocLayout(img_dir, (VocPart(img_dir, img_dir),), None)
    if len(layout.parts) > 1:
        raise DatasetError(
            f"{layout.root}: --images names one folder, but this dataset has a folder per "
            f"split ({', '.join(p.annotations.name for p in layout.parts)}); pass one split folder"
        )
    return VocLayout(layout.root, (VocPart(layout.parts[0].annotations, img_dir),), layout.lists)


def _find(path: Path) -> VocLayout | None:
    part = _probe(path)
    if part is not None:
        return VocLayout(path, (part,), _lists_dir(path))
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    split_parts = []
    for d in subdirs:
        split = SPLIT_FOLDERS.get(d.name.lower())
        found = _probe(d) if split else None
        if found is not None:
            split_parts.append(VocPart(found.annotations, found.images, split))
    if split_parts:
        return VocLayout(path, tuple(split_parts), None)
    for d in subdirs:
        part = _probe(d)
        if part is not None:
            return VocLayout(d, (part,), _lists_dir(d))
    return None


def find_voc_root(path: Path) -> Path | None:
    """The folder of a VOC dataset at ``path`` (itself or one level down), or None."""
    layout = find_voc_layout(path)
    return layout.root if layout is not None else None


def _folder(value: str | Path, option: str) -> Path:
    folder = Path(value).absolute()
    if not folder.is_dir():
        raise DatasetError(f"{folder} (--{option}): no such folder")
    return folder


def _index(folder: Path, suffixes: set[str] | tuple[str, ...]) -> dict[str, Path]:
    """``{file name: path}`` of the files of ``folder`` with ``suffixes`` (one directory read)."""
    with os.scandir(folder) as it:
        return {
            e.name: folder / e.name
            for e in it
            if os.path.splitext(e.name)[1].lower() in suffixes and e.is_file()
        }


class _Images:
    """The image files of a folder, found by XML ``<filename>`` or by stem, in any case."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.by_name = _index(folder, IMAGE_SUFFIXES)
        self.by_lower = {n.lower(): p for n, p in sorted(self.by_name.items(), reverse=True)}
        self.by_stem: dict[str, Path] = {}
        for name in sorted(self.by_name, key=_suffix_rank):
            self.by_stem.setdefault(os.path.splitext(name)[0].lower(), self.by_name[name])

    def find(self, stem: str, filename: str | None) -> Path | None:
        if filename:
            name = filename.replace("\\", "/").rsplit("/", 1)[-1]
            hit = self.by_name.get(name) or self.by_lower.get(name.lower())
            if hit is not None:
                return hit
        return self.by_stem.get(stem.lower())

    def expected(self, stem: str, filename: str | None) -> Path:
        """Where the image should be: reported as missing by the builder."""
        if filename:
            return self.folder / filename.replace("\\", "/").rsplit("/", 1)[-1]
        return self.folder / f"{stem}.jpg"


def _suffix_rank(name: str) -> tuple[int, str]:
    order = (".jpg", ".jpeg", ".png")
    suffix = os.path.splitext(name)[1].lower()
    return (order.index(suffix) if suffix in order else len(order), name)


def _parse_xml(xml_file: Path) -> tuple[ET.Element, list[int]]:
    text = xml_file.read_text()
    lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"<object[\s>]", text)]
    return ET.fromstring(text), lines


def _read_list(f: Path) -> list[tuple[str, int]]:
    """``(id, line)`` of each non-empty line of a split list (first field: the id)."""
    return [
        (ln.split()[0], k) for k, ln in enumerate(f.read_text().splitlines(), start=1) if ln.strip()
    ]


def _split_lists(lists: Path) -> dict[str, tuple[Path, list[tuple[str, int]]]]:
    """``{split: (list file, [(id, line), ...])}`` from ``ImageSets/Main``."""
    files = {p.name.lower(): p for p in sorted(lists.iterdir()) if p.is_file()}
    out = {
        split: (files[name], _read_list(files[name]))
        for split, name in SPLIT_FILES
        if name in files
    }
    if "train" not in out and "trainval.txt" in files:
        out["train"] = (files["trainval.txt"], _read_list(files["trainval.txt"]))
        out.pop("val", None)
    return out


def _listed(
    lists: dict[str, tuple[Path, list[tuple[str, int]]]], log: ProblemLog
) -> dict[str, list[str]]:
    """The ids of each split, an id listed in two splits kept in the evaluation one.

    A repeat within one list is ignored; a listing in a second split is a ``split_overlap``
    problem that names both list files (train/val leakage), never a "duplicate image".
    """
    owner: dict[str, tuple[str, Path, int]] = {}
    rank = {s: KEEP_PRIORITY.index(s) if s in KEEP_PRIORITY else len(KEEP_PRIORITY) for s in lists}
    for split in sorted(lists, key=lambda s: rank[s]):
        f, entries = lists[split]
        for stem, line in entries:
            if stem not in owner:
                owner[stem] = (split, f, line)
    out: dict[str, list[str]] = {}
    for split, (f, entries) in lists.items():
        ids: list[str] = []
        seen: set[str] = set()
        for stem, line in entries:
            keep_split, keep_file, keep_line = owner[stem]
            if stem in seen:
                continue
            seen.add(stem)
            if keep_split != split:
                log.add(
                    "split_overlap",
                    str(f),
                    f"{stem} is also listed in {keep_file}:{keep_line} ({keep_split} split): "
                    f"an image in two splits leaks between them; kept in {keep_split} only",
                    line,
                )
                continue
            ids.append(stem)
        out[split] = ids
    return out


def read_voc(
    path: str | Path,
    log: ProblemLog,
    names: list[str] | None = None,
    check_duplicates: bool = True,
    images: str | Path | None = None,
    annotations: str | Path | None = None,
) -> DetectionDataset:
    """Read a Pascal VOC dataset into a :class:`DetectionDataset` (layouts: module docstring)."""
    path = Path(path).absolute()
    layout = find_voc_layout(path, images, annotations)
    if layout is None:
        raise DatasetError(
            f"{path}: not a VOC folder (no Annotations/ + JPEGImages/, no XML beside images); "
            "pass --annotations DIR and --images DIR"
        )
    for part in layout.parts:
        if part.images is None:
            tried = ", ".join(str(part.annotations.parent / n) for n in ("JPEGImages", "images"))
            raise DatasetError(
                f"{part.annotations}: no image folder found for these annotations "
                f"(tried {tried}, {part.annotations}); pass --images DIR (data.images)"
            )

    one_part = len(layout.parts) == 1 and layout.parts[0].split is None
    lists = _split_lists(layout.lists) if one_part and layout.lists is not None else {}
    items: list[tuple[str, str, Path | None, _Images]] = []  # (split, id, XML or None, images)
    for part in layout.parts:
        xmls = _index(part.annotations, (".xml",))
        xml_of = {os.path.splitext(n)[0]: p for n, p in sorted(xmls.items())}
        xml_lower = {k.lower(): p for k, p in sorted(xml_of.items(), reverse=True)}
        pics = _Images(part.images)
        if lists:
            for split, ids in _listed(lists, log).items():
                f, entries = lists[split]
                line_of = {}
                for stem, line in entries:
                    line_of.setdefault(stem, line)
                for stem in ids:
                    xml = xml_of.get(stem) or xml_lower.get(stem.lower())
                    if xml is None:
                        log.add(
                            "missing_annotation",
                            str(f),
                            f"{stem} is listed in the {split} split but "
                            f"{part.annotations / (stem + '.xml')} does not exist",
                            line_of[stem],
                        )
                        continue
                    items.append((split, stem, xml, pics))
        else:
            items += _every_image(part, xml_of, pics, log)

    parsed: dict[Path, tuple[ET.Element | None, list[int]]] = {}
    for _, _, xml, _ in items:
        if xml is None or xml in parsed:
            continue
        try:
            parsed[xml] = _parse_xml(xml)
        except (ET.ParseError, OSError, UnicodeDecodeError) as exc:
            log.add("malformed_annotation", str(xml), f"cannot parse XML ({exc}); image skipped")
            parsed[xml] = (None, [])
    if names is None:
        found = {
            (obj.findtext("name") or "").strip()
            for tree, _ in parsed.values()
            if tree is not None
            for obj in tree.iter("object")
        }
        names = sorted(n for n in found if n)
    class_of = {n: i for i, n in enumerate(names)}

    builder = DatasetBuilder(names, log, "voc", str(layout.root))
    declared = set()
    if lists:
        sources = {split: str(f) for split, (f, _) in lists.items()}
    else:
        sources = {p.split or "train": str(p.annotations) for p in layout.parts}
    for split, stem, xml, pics in items:
        if split not in declared:
            declared.add(split)
            builder.declare_split(split, sources.get(split, str(pics.folder)))
        tree, lines = parsed[xml] if xml is not None else (None, [])
        if xml is not None and tree is None:
            continue  # an unreadable XML: its image is neither labelled nor background
        filename = tree.findtext("filename") if tree is not None else None
        image = pics.find(stem, filename) or pics.expected(stem, filename)
        idx = builder.add_image(str(image), split, _size(tree))
        if tree is not None:
            _add_objects(tree, lines, xml, idx, class_of, builder, log)
    for split in sources:  # a split list that lost every image is still reported as empty
        if split not in declared:
            builder.declare_split(split, sources[split])
    return builder.build(check_duplicates=check_duplicates)


def _every_image(
    part: VocPart, xml_of: dict[str, Path], pics: _Images, log: ProblemLog
) -> list[tuple[str, str, Path | None, _Images]]:
    """Every image of a part (no split lists), with the XML that names it or shares its stem.

    An image without an XML is a background image; an XML whose image is missing is a
    ``label_without_image`` problem.
    """
    split = part.split or "train"
    claimed: dict[Path, tuple[str, Path]] = {}
    for stem, xml in xml_of.items():
        filename = _filename(xml)
        image = pics.find(stem, filename)
        if image is None or image in claimed:
            why = (
                "no image with that stem"
                if image is None
                else f"{image.name} is claimed by {claimed[image][1].name}"
            )
            log.add("label_without_image", str(xml), f"annotation ignored ({why})")
            continue
        claimed[image] = (stem, xml)
    out = []
    for name in sorted(pics.by_name):
        image = pics.by_name[name]
        stem, xml = claimed.get(image, (os.path.splitext(name)[0], None))
        out.append((split, stem, xml, pics))
    return out


def _filename(xml: Path) -> str | None:
    """The ``<filename>`` of an XML, read without parsing the whole file (None if absent)."""
    try:
        with open(xml, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r"<filename>\s*([^<]*?)\s*</filename>", head)
    return m.group(1) if m else None


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
