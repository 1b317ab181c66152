"""COCO instances JSON + image folder, as COCO distributes it and as labelling tools export it.

Layouts found from the path (a JSON file, or a folder):

- the COCO 2017 release: ``annotations/instances_{train,val}2017.json`` beside the other
  tasks' files of the same splits (``captions_*``, ``person_keypoints_*``, ``panoptic_*``,
  ``stuff_*``: never read, skipped with a note), images in ``train2017/`` and ``val2017/``
  (named by the JSON's split name, at the dataset root or under ``images/``);
- Roboflow: ``{train,valid,test}/_annotations.coco.json`` with the images beside it;
- CVAT (``annotations/instances_default.json``) and Label Studio (``result.json``), with
  ``images/``;
- ``annotations/instances_{train,val}.json`` + ``images/{train,val}/``.

The image folder of each JSON is the first candidate that holds a sample of its
``file_name`` entries; where none does, ``images`` (``--images``) says it and the error
lists the folders tried. Category ids (any integers, e.g. starting at 1) map to contiguous
class ids in ascending id order, names kept; Roboflow's unused parent category (the
``supercategory`` of the others) is dropped with a note. Image ids may be strings.
``iscrowd`` boxes are skipped by default (and counted), or kept with ``iscrowd="keep"``.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from detreduce.data.formats.builder import DatasetBuilder
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import ProblemLog
from detreduce.errors import ConfigError, DatasetError

ISCROWD_CHOICES = ("skip", "keep")

#: Annotation files of other COCO tasks (name prefix → what they hold): never detection boxes.
OTHER_TASKS = {
    "captions_": "captions",
    "person_keypoints_": "keypoints",
    "panoptic_": "panoptic segmentation",
    "stuff_": "stuff segmentation",
    "image_info_": "an image list without annotations",
}
#: JSON names whose split is the name of the folder they sit in (Roboflow exports).
_SPLIT_FROM_FOLDER = ("_annotations.coco", "_annotations")
_SAMPLE = 16  # file names probed per candidate image folder


@dataclass(frozen=True)
class CocoFile:
    """One detection JSON: its split and the split name its image folder may carry."""

    json: Path
    split: str  # train, val or test
    name: str  # the file's own split name: train2017, default, valid, ...


@dataclass
class CocoFiles:
    """The detection JSONs found under a path, and the JSONs skipped on purpose (and why)."""

    files: list[CocoFile] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.skipped)

    def split_files(self) -> dict[str, Path]:
        return {f.split: f.json for f in self.files}

    def note(self) -> str | None:
        """One line: which JSONs were skipped and why (None when none was)."""
        if not self.skipped:
            return None
        why: dict[str, list[str]] = {}
        for path, reason in self.skipped:
            why.setdefault(reason, []).append(path.name)
        parts = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in why.items())
        used = ", ".join(f.json.name for f in self.files) or "none"
        folder = self.skipped[0][0].parent
        return (
            f"{folder}: skipped {len(self.skipped)} JSON file(s) that are not detection "
            f"annotations: {parts}; read {used}"
        )


def find_coco_files(path: str | Path, annotations: str | Path | None = None) -> CocoFiles:
    """The detection JSONs under ``path`` (a JSON file, or a folder), or ``annotations``.

    A folder is searched in ``annotations/`` (any case), else in itself, else in its
    sub-folders (Roboflow's ``train/_annotations.coco.json``). Files of other COCO tasks
    are skipped by name without being read; where ``instances_*`` files exist, only they
    are read. Two files for one split are refused (which one is meant is not knowable).
    """
    source = Path(annotations if annotations is not None else path).absolute()
    if source.is_file():
        candidates = [source]
    elif source.is_dir():
        ann = _child_dir(source, "annotations")
        candidates = (_jsons(ann) if ann else []) or _jsons(source)
        if not candidates:
            subdirs = sorted(p for p in source.iterdir() if p.is_dir())
            candidates = [f for d in subdirs for f in _jsons(d)]
    else:
        return CocoFiles()
    found = CocoFiles()
    keep: list[Path] = []
    for f in candidates:
        task = next((t for p, t in OTHER_TASKS.items() if f.name.lower().startswith(p)), None)
        if task:
            found.skipped.append((f, task))
        else:
            keep.append(f)
    if any(f.name.lower().startswith("instances_") for f in keep):
        for f in keep:
            if not f.name.lower().startswith("instances_"):
                found.skipped.append((f, "not an instances_* file"))
        keep = [f for f in keep if f.name.lower().startswith("instances_")]
    by_split: dict[str, Path] = {}
    for f in keep:
        name = _split_name(f)
        split = _split_of(name)
        if split in by_split:
            raise DatasetError(
                f"{by_split[split]} and {f.name} are both {split} annotations; "
                "pass the one JSON file to read (or --annotations FILE)"
            )
        by_split[split] = f
        found.files.append(CocoFile(f, split, name))
    return found


def _jsons(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() == ".json" and p.is_file())


def _child_dir(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched case-insensitively (``Annotations``, ``ANNOTATIONS``)."""
    exact = folder / name
    if exact.is_dir():
        return exact
    with os.scandir(folder) as it:  # names first: no stat of the files of a big folder
        hits = sorted(e.name for e in it if e.name.lower() == name and e.is_dir())
    return folder / hits[0] if hits else None


def _split_name(json_file: Path) -> str:
    """The split name a file carries: ``train2017`` of ``instances_train2017.json``,
    the folder's name for Roboflow's ``train/_annotations.coco.json``."""
    stem = json_file.name[: -len(".json")]
    if stem.lower() in _SPLIT_FROM_FOLDER:
        return json_file.parent.name
    return re.sub(r"^instances_", "", stem, flags=re.IGNORECASE)


def _split_of(name: str) -> str:
    lowered = name.lower()
    token = re.sub(r"[\d_-]+$", "", lowered)
    for split, keys in (
        ("train", ("train",)),
        ("val", ("val", "valid", "validation", "minival")),
        ("test", ("test", "test-dev", "testdev")),
    ):
        if token in keys:
            return split
    for split, keys in (("train", ("train",)), ("val", ("val", "valid")), ("test", ("test",))):
        if any(k in lowered for k in keys):
            return split
    return "train"


def read_coco(
    path: str | Path,
    log: ProblemLog,
    iscrowd: str = "skip",
    check_duplicates: bool = True,
    images: str | Path | None = None,
    annotations: str | Path | None = None,
) -> DetectionDataset:
    """Read one COCO JSON, or every detection JSON of a folder (one split each).

    ``images`` is the image folder (or a folder holding one per split) where it cannot be
    inferred; ``annotations`` a JSON file or a folder of them, read instead of ``path``'s.
    """
    if iscrowd not in ISCROWD_CHOICES:
        raise ConfigError(f"iscrowd must be one of {', '.join(ISCROWD_CHOICES)}, got {iscrowd!r}")
    path = Path(path).absolute()
    images_dir = _existing_dir(images, "images") if images is not None else None
    if annotations is not None and not Path(annotations).exists():
        raise DatasetError(
            f"{Path(annotations).absolute()} (--annotations): no such file or folder"
        )
    found = find_coco_files(path, annotations)
    note = found.note()
    if not found.files:
        where = Path(annotations).absolute() if annotations is not None else path
        raise DatasetError(
            f"{where}: no COCO detection JSON found (expected annotations/instances_*.json, "
            f"a split folder's _annotations.coco.json or a JSON file)"
            + (f"; {note.split(': ', 1)[1]}" if note else "")
        )
    docs = {}
    for cf in found.files:
        try:
            docs[cf.split] = json.loads(cf.json.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{cf.json}: cannot read COCO JSON ({exc})") from None
        if not isinstance(docs[cf.split], dict) or not isinstance(
            docs[cf.split].get("images"), list
        ):
            raise DatasetError(f"{cf.json}: not a COCO instances JSON (no 'images' list)")

    names, cat_to_class, dropped = _categories(docs, found.split_files())
    if not names:
        raise DatasetError(f"{path}: no categories in the COCO JSON")
    builder = DatasetBuilder(names, log, "coco", str(path))
    if note:
        builder.notes.append(note)
    if dropped:
        builder.notes.append(dropped)
    for cf in found.files:
        doc = docs[cf.split]
        folder, by_name = _image_folder(cf, doc, images_dir, path if annotations else None)
        builder.declare_split(cf.split, str(cf.json))
        id_to_index: dict = {}
        for img in doc["images"]:
            try:
                file_name, img_id = img["file_name"], img["id"]
            except (KeyError, TypeError):
                log.add(
                    "malformed_annotation", str(cf.json), f"image entry without file_name/id: {img}"
                )
                continue
            w, h = img.get("width"), img.get("height")
            size = (int(w), int(h)) if w and h else None
            id_to_index[img_id] = builder.add_image(
                str(folder / _rel(file_name, by_name)), cf.split, size
            )
        for ann in doc.get("annotations", []):
            _add_annotation(ann, cf.json, id_to_index, cat_to_class, builder, log, iscrowd)
    return builder.build(check_duplicates=check_duplicates)


def _existing_dir(value: str | Path, option: str) -> Path:
    folder = Path(value).absolute()
    if not folder.is_dir():
        raise DatasetError(f"{folder} (--{option}): no such folder")
    return folder


def _categories(docs: dict, files: dict[str, Path]) -> tuple[list[str], dict[int, int], str | None]:
    """Class names, category id → class id, and the note on a dropped parent category."""
    cat_names: dict[int, str] = {}
    supers: dict[int, str] = {}
    for split, doc in docs.items():
        for cat in doc.get("categories") or []:
            if not isinstance(cat, dict):
                continue
            cid = cat.get("id")
            if cid in cat_names and cat_names[cid] != str(cat.get("name")):
                raise DatasetError(
                    f"{files[split]}: category id {cid} is {cat.get('name')!r} here "
                    f"but {cat_names[cid]!r} in another split"
                )
            cat_names[cid] = str(cat.get("name"))
            supers[cid] = str(cat.get("supercategory", ""))
    used = {
        a.get("category_id")
        for doc in docs.values()
        for a in doc.get("annotations") or []
        if isinstance(a, dict)
    }
    parents = [
        cid
        for cid, name in cat_names.items()
        if cid not in used and any(s == name and c != cid for c, s in supers.items())
    ]
    note = None
    if parents and len(parents) < len(cat_names):
        names = ", ".join(f"{cat_names[c]!r} (id {c})" for c in sorted(parents))
        note = (
            f"{files[next(iter(files))]}: dropped category {names}: no box uses it and it is "
            "the supercategory of the others (a Roboflow export's parent class)"
        )
        for cid in parents:
            del cat_names[cid]
    ordered = sorted(cat_names)
    return [cat_names[c] for c in ordered], {c: i for i, c in enumerate(ordered)}, note


def _rel(file_name: str, by_name: bool) -> str:
    file_name = str(file_name).replace("\\", "/")
    return file_name.rsplit("/", 1)[-1] if by_name else file_name


def _image_folder(
    cf: CocoFile, doc: dict, images: Path | None, data_path: Path | None
) -> tuple[Path, bool]:
    """The folder the JSON's ``file_name`` entries are relative to, and whether only their
    base name is (Label Studio writes ``images/x.jpg`` or an upload path).

    The first candidate holding most of a sample of the file names wins: so a dataset root
    that exists but holds no image is never taken for the image folder.
    """
    if images is not None:
        roots = [images / cf.name, images / cf.split, images]
    else:
        json_dir = cf.json.parent
        base = json_dir.parent if json_dir.name.lower() == "annotations" else json_dir
        roots = [
            base / "images" / cf.name,
            base / cf.name,
            base / "images" / cf.split,
            base / cf.split,
            base / "images",
            base,
        ]
        if data_path is not None and data_path.is_dir():
            roots.insert(0, data_path)
    roots = list(dict.fromkeys(roots))
    entries = [im.get("file_name") for im in doc["images"] if isinstance(im, dict)]
    entries = [str(e) for e in entries if isinstance(e, str) and e]
    if not entries:
        return next((r for r in roots if r.is_dir()), roots[-1]), False
    step = max(1, len(entries) // _SAMPLE)
    sample = entries[::step][:_SAMPLE]
    best, best_hits = None, 0
    for root in roots:
        if not root.is_dir():
            continue
        for by_name in (False, True):
            hits = sum(os.path.isfile(root / _rel(e, by_name)) for e in sample)
            if hits > best_hits:
                best, best_hits = (root, by_name), hits
    if best is None:
        tried = ", ".join(str(r) for r in roots)
        raise DatasetError(
            f"{cf.json}: cannot find the images of split {cf.name!r} (e.g. {sample[0]}); "
            f"tried {tried}; pass --images DIR (data.images)"
        )
    return best


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
