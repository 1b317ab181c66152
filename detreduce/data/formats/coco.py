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

At COCO 2017 scale (118k images, 860k boxes, a 450 MB JSON) what costs is parsing the
polygon ``segmentation`` arrays, which no box needs: :func:`parse_instances` leaves them
unparsed and parses the rest, and :func:`write_subset` parses only the kept annotations'
polygons. Annotations are checked column by column with one vectorised bbox test; only
unusual ones take the one-by-one path that writes the problem messages
(``benchmarks/bench_coco_scale.py``, ``benchmarks/NOTES_data.md``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from detreduce.data.atomic import atomic_path
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
_WS = rb"[ \t\n\r]*"
_NUMBERS = rb"\[[ \t\n\r0-9.,eE+-]*\]"  # a flat array of numbers (balanced by construction)
#: A polygon list, COCO's ``[[x1, y1, x2, y2, ...], ...]``: whole, as nothing but numbers.
_POLYGONS = rb"\[" + _WS + rb"(?:" + _NUMBERS + rb"(?:" + _WS + rb"," + _WS + _NUMBERS + rb")*)?"
_POLYGONS += _WS + rb"\]"
#: The ``segmentation`` key, not the end of a key such as ``"x\"segmentation"`` (the look-behind
#: sits at the end so that the search still skips ahead to the literal).
_KEY = rb'"segmentation"(?<!\\"segmentation")' + _WS + rb":" + _WS
#: A ``segmentation`` key and its polygon list.
_POLYGON_VALUE = re.compile(_KEY + _POLYGONS)
#: A ``segmentation`` key and its polygon list (group 1) or a number (group 1 unset).
_POLYGON_OR_NUMBER = re.compile(_KEY + rb"(?:(" + _POLYGONS + rb")|-?[0-9])")


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
    docs = {cf.split: read_instances(cf.json)[0] for cf in found.files}

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
        folder_str = os.fspath(folder)
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
                _join(folder, folder_str, _rel(file_name, by_name)), cf.split, size
            )
        _add_annotations(
            doc.get("annotations", []), cf.json, id_to_index, cat_to_class, builder, log, iscrowd
        )
    return builder.build(check_duplicates=check_duplicates)


def read_instances(
    path: Path, keep_polygons: bool = False
) -> tuple[dict, bytes | None, list[tuple[int, int]] | None]:
    """Read one instances JSON without parsing its polygon segmentations.

    Each polygon ``segmentation`` is ``[]`` in the document (see :func:`parse_instances`)
    and the file's bytes are let go before the parse; with ``keep_polygons`` it is the
    index of its span instead, and the bytes and the spans are returned too (else None).
    Raises :class:`DatasetError` when the file cannot be read or parsed, or is not an
    instances JSON.
    """
    raw = spans = None
    try:
        with _gc_paused():
            if keep_polygons:
                raw = path.read_bytes()
                doc, spans = parse_instances(raw, keep_polygons=True)
            else:
                doc = _read_dropping_polygons(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read COCO JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{path}: not a COCO instances JSON (no 'images' list)")
    return doc, raw, spans


def _read_dropping_polygons(path: Path) -> object:
    """:func:`parse_instances` of the file, its bytes let go as soon as the polygons are
    out (peak memory: the text without polygons and the document)."""
    raw = path.read_bytes()
    text = _POLYGON_VALUE.sub(b'"segmentation": []', raw)
    del raw
    text = text.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    del text
    return json.loads(path.read_bytes().decode("utf-8"))  # the error where it is in the file


def parse_instances(
    raw: bytes, keep_polygons: bool = False
) -> tuple[object, list[tuple[int, int]] | None]:
    """``json.loads`` of ``raw`` (UTF-8) with each polygon ``segmentation`` left unparsed.

    Parsing the 40+ million polygon numbers of COCO 2017 train is most of ``json.loads``'
    time and memory, and no box needs them. A ``segmentation`` value of COCO's polygon
    form (a list of lists of numbers; in valid JSON the pattern matches it whole, and an
    unescaped ``"segmentation"`` followed by ``:`` is that key) becomes ``[]``, or with
    ``keep_polygons`` its index ``k`` in the spans returned:
    ``raw[spans[k][0]:spans[k][1]]`` is the value as written.
    Spans are None without ``keep_polygons``, and where placeholders would be ambiguous (a
    ``segmentation`` that is a number; the document is then parsed whole). A malformed
    number inside a polygon goes unreported, as nothing reads it; any other parse error is
    the one ``json.loads`` reports on the file as written. One regular-expression scan,
    O(bytes), then a parse of the rest.
    """
    if not keep_polygons:
        return _loads(_POLYGON_VALUE.sub(b'"segmentation": []', raw), raw)[0], None
    view = memoryview(raw)
    pieces, spans, last = [], [], 0
    for m in _POLYGON_OR_NUMBER.finditer(raw):
        start, end = m.span(1)
        if start < 0:
            return _loads(raw, raw)[0], None
        pieces += (view[last:start], b"%d" % len(spans))
        spans.append((start, end))
        last = end
    pieces.append(view[last:])
    doc, stripped = _loads(b"".join(pieces), raw)
    return doc, (spans if stripped else None)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a JSON is parsed: the parse creates
    millions of containers, none of them in a cycle, and each collection on the way would
    walk them all (a third of the parse time of COCO 2017 train). Restored as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _loads(text: bytes, raw: bytes) -> tuple[object, bool]:
    """``json.loads(text)`` and True; on an error, the error (or the document and False)
    of ``raw`` itself, so a message points at the file as written."""
    try:
        return json.loads(text.decode("utf-8")), True
    except json.JSONDecodeError:
        return json.loads(raw.decode("utf-8")), False


def write_subset(source: Path, kept_names: Iterable[str], out: Path) -> None:
    """Write ``source`` (an instances JSON) filtered to the images whose base name is in
    ``kept_names`` and to their annotations, atomically; other keys and all ids kept.

    The bytes are those of ``json.dumps`` of the filtered document, written a piece at a
    time; only the kept annotations' polygons are parsed (see :func:`parse_instances`),
    so the cost stays near one parse of the boxes. Where a placeholder is found anywhere
    but as an annotation's ``segmentation``, in file order, the file is parsed whole.
    """
    doc, raw, spans = read_instances(Path(source), keep_polygons=True)
    annotations = doc.get("annotations", [])
    if spans is not None:
        seen = [a["segmentation"] for a in annotations if _placeholder(a)]
        if seen != list(range(len(spans))):
            doc, spans = json.loads(raw.decode("utf-8")), None
            annotations = doc.get("annotations", [])
    kept_names = set(kept_names)
    images = [im for im in doc["images"] if _base_name(im.get("file_name", "")) in kept_names]
    ids = {im["id"] for im in images}
    annotations = [a for a in annotations if a.get("image_id") in ids]
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f, _gc_paused():
        f.write("{")
        for n, (key, value) in enumerate(doc.items()):
            f.write(f"{', ' if n else ''}{json.dumps(key)}: ")
            if key == "images":
                f.write(json.dumps(images))
            elif key == "annotations":
                f.write("[")
                for i, ann in enumerate(annotations):
                    if spans is not None and _placeholder(ann):
                        ann = {**ann, "segmentation": _polygon(source, ann, raw, spans)}
                    f.write((", " if i else "") + json.dumps(ann))
                f.write("]")
            else:
                f.write(json.dumps(value))
        f.write("}")


def _placeholder(ann) -> bool:
    return isinstance(ann, dict) and type(ann.get("segmentation")) is int


def _polygon(source: Path, ann: dict, raw: bytes, spans: list[tuple[int, int]]) -> list:
    start, end = spans[ann["segmentation"]]
    try:
        return json.loads(raw[start:end])
    except json.JSONDecodeError as exc:
        where = f"annotation id {ann.get('id', '?')}"
        raise DatasetError(
            f"{source}: cannot read COCO JSON ({where}: segmentation: {exc})"
        ) from None


def _base_name(file_name: str) -> str:
    """``Path(file_name).name``, without a Path where the name is a plain one."""
    name = file_name.rsplit("/", 1)[-1]
    return name if name and name != "." else Path(file_name).name


def _join(folder: Path, folder_str: str, rel: str) -> str:
    """``str(folder / rel)`` without a Path per image where ``rel`` is a plain file name."""
    if rel and "/" not in rel and rel not in (".", ".."):
        return os.path.join(folder_str, rel)
    return str(folder / rel)


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


def _add_annotations(
    anns: list, f: Path, id_to_index: dict, cat_to_class: dict, builder, log, iscrowd: str
) -> None:
    """Check every annotation of one JSON and add the boxes of the good ones.

    The same checks, messages and order as :func:`_check_annotation` applied to each in
    turn, which it falls back to for whatever is unusual, at a fraction of the cost: the
    fields are gathered column by column (:func:`_columns`), the bboxes converted and
    tested in one numpy pass, and problems logged in annotation order once all are known.
    O(m) for m annotations.
    """
    columns = _columns(anns, id_to_index, cat_to_class, iscrowd)
    if columns is None:
        columns = _columns_one_by_one(anns, id_to_index, cat_to_class, iscrowd)
    where, images, classes, bboxes, checked = columns
    xywh = _bbox_array(bboxes)
    good = np.isfinite(xywh).all(axis=1) & (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
    for row in np.flatnonzero(~good).tolist():
        pos = int(where[row])
        checked.append((pos, _check_annotation(anns[pos], id_to_index, cat_to_class, iscrowd)))
    checked.sort(key=lambda item: item[0])
    x, y, w, h = xywh[good].T
    position, image, cls = [where[good]], [images[good]], [classes[good]]
    xyxy = [np.stack([x, y, x + w, y + h], axis=1)]
    for pos, result in checked:
        if isinstance(result[0], str):
            log.add(result[0], str(f), result[1])
        else:  # a box the fast path could not read but the scalar check could (e.g. "1.5")
            position.append(np.array([pos]))
            image.append(np.array([result[0]]))
            cls.append(np.array([result[1]]))
            xyxy.append(np.array([result[2]], dtype=np.float64))
    order = np.argsort(np.concatenate(position), kind="stable")
    builder.add_boxes(
        np.concatenate(image)[order], np.concatenate(cls)[order], np.concatenate(xyxy)[order]
    )


_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, list, list[tuple[int, tuple]]]


def _columns(anns: list, id_to_index: dict, cat_to_class: dict, iscrowd: str) -> _Columns | None:
    """(positions, image indices, class ids, bboxes) of the annotations whose image and
    category are known (and that are not skipped crowd boxes), and (position, problem) of
    the others, by C-level maps over each field: None where some annotation is not a
    mapping holding ``image_id``, ``category_id`` and ``bbox`` (the loop then says which)."""
    try:
        image_ids = list(map(itemgetter("image_id"), anns))
        category_ids = list(map(itemgetter("category_id"), anns))
        bboxes = list(map(itemgetter("bbox"), anns))
        crowd = np.array(list(map(bool, [a.get("iscrowd", 0) for a in anns])), dtype=bool)
        # unknown ids map to None, which becomes NaN
        images = np.array(list(map(id_to_index.get, image_ids)), dtype=np.float64)
        classes = np.array(list(map(cat_to_class.get, category_ids)), dtype=np.float64)
    except (KeyError, TypeError, AttributeError):  # unhashable ids included
        return None
    ok = ~np.isnan(images) & ~np.isnan(classes) & ~(crowd & (iscrowd == "skip"))
    checked = [
        (pos, _check_annotation(anns[pos], id_to_index, cat_to_class, iscrowd))
        for pos in np.flatnonzero(~ok).tolist()
    ]
    where = np.flatnonzero(ok)
    kept_bboxes = bboxes if len(where) == len(anns) else [bboxes[i] for i in where.tolist()]
    return (
        where,
        images[where].astype(np.int64),
        classes[where].astype(np.int64),
        kept_bboxes,
        checked,
    )


def _columns_one_by_one(
    anns: list, id_to_index: dict, cat_to_class: dict, iscrowd: str
) -> _Columns:
    """:func:`_columns` for any list: four dictionary look-ups per annotation."""
    skip_crowd = iscrowd == "skip"
    where, images, classes, bboxes = [], [], [], []
    checked: list[tuple[int, tuple]] = []
    for pos, ann in enumerate(anns):
        try:
            image = id_to_index[ann["image_id"]]
            cls = cat_to_class[ann["category_id"]]
            bbox = ann["bbox"]
            crowd = ann.get("iscrowd", 0)
        except (KeyError, TypeError, AttributeError):  # missing or unknown: say which
            checked.append((pos, _check_annotation(ann, id_to_index, cat_to_class, iscrowd)))
            continue
        if crowd and skip_crowd:
            checked.append((pos, _check_annotation(ann, id_to_index, cat_to_class, iscrowd)))
            continue
        where.append(pos)
        images.append(image)
        classes.append(cls)
        bboxes.append(bbox)
    return (
        np.asarray(where, dtype=np.int64),
        np.asarray(images, dtype=np.int64),
        np.asarray(classes, dtype=np.int64),
        bboxes,
        checked,
    )


def _bbox_array(bboxes: list) -> np.ndarray:
    """``(k, 4)`` float64 of the bboxes; NaN rows where one is not 4 numbers."""
    try:
        arr = np.array(bboxes, dtype=np.float64)
        if arr.shape == (len(bboxes), 4):
            return arr
    except (TypeError, ValueError, OverflowError):
        pass
    arr = np.full((len(bboxes), 4), np.nan)
    for row, bbox in enumerate(bboxes):
        try:
            values = [float(v) for v in bbox]
        except (TypeError, ValueError, OverflowError):
            continue
        if len(values) == 4:
            arr[row] = values
    return arr


def _check_annotation(ann, id_to_index: dict, cat_to_class: dict, iscrowd: str) -> tuple:
    """One annotation checked in full: ``(image index, class id, xyxy)``, or
    ``(problem kind, message)`` saying what is wrong with it."""
    aid = ann.get("id", "?") if isinstance(ann, dict) else "?"
    where = f"annotation id {aid}"
    if not isinstance(ann, dict) or "bbox" not in ann or "image_id" not in ann:
        return "malformed_annotation", f"{where}: missing bbox or image_id"
    try:
        known_image = ann["image_id"] in id_to_index
    except TypeError:  # unhashable (a list)
        known_image = False
    if not known_image:
        return "unknown_image_id", f"{where}: image id {ann['image_id']!r} not in images"
    try:
        known_category = ann.get("category_id") in cat_to_class
    except TypeError:
        known_category = False
    if not known_category:
        return "unknown_category", f"{where}: category id {ann.get('category_id')!r} unknown"
    if ann.get("iscrowd", 0) and iscrowd == "skip":
        return "crowd_box", f"{where}: iscrowd=1 skipped"
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (TypeError, ValueError, OverflowError):
        return "malformed_annotation", f"{where}: bbox {ann['bbox']!r} is not 4 numbers"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return "malformed_annotation", f"{where}: non-finite bbox {ann['bbox']!r}"
    if w <= 0 or h <= 0:
        return "degenerate_box", f"{where}: zero or negative area bbox {ann['bbox']!r}"
    return id_to_index[ann["image_id"]], cat_to_class[ann.get("category_id")], (x, y, x + w, y + h)
