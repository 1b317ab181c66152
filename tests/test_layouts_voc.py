"""Pascal VOC in the wild: small replicas built in tmp_path.

Folder names in any case, XML beside the images, split folders, ``--images`` /
``--annotations``, no ``ImageSets`` (every image is train), and the two split-list
problems: a listed id without an XML (``missing_annotation``) and an id in two splits
(``split_overlap``, never a "duplicate" of itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detreduce.cli import main
from detreduce.data import detect_format, load_dataset
from detreduce.errors import DatasetError

CLASSES = ("cat", "dog", "bird")


def _image(path: Path, seed: int, size: int = 48) -> None:
    """A tiny JPEG with distinct bytes (noise), so no two are duplicates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def _xml(path: Path, filename: str, n_boxes: int, seed: int) -> None:
    """A VOC annotation with ``n_boxes`` objects cycling over the classes."""
    objects = "".join(
        f"<object><name>{CLASSES[(seed + k) % 3]}</name><difficult>0</difficult>"
        f"<bndbox><xmin>{2 + k}</xmin><ymin>3</ymin><xmax>{20 + k}</xmax><ymax>30</ymax>"
        "</bndbox></object>\n"
        for k in range(n_boxes)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<annotation>\n<folder>x</folder><filename>{filename}</filename>\n"
        f"<size><width>48</width><height>48</height><depth>3</depth></size>\n{objects}"
        "</annotation>\n"
    )


def _pairs(ann: Path, img: Path, boxes: list[int], seed: int, suffix: str = ".jpg") -> list[str]:
    """Images ``img/<id><suffix>`` and their XML ``ann/<id>.xml``; returns the ids."""
    ids = []
    for i, n in enumerate(boxes):
        stem = f"im_{seed}_{i:03d}"
        _image(img / f"{stem}{suffix}", seed * 100 + i)
        _xml(ann / f"{stem}.xml", f"{stem}{suffix}", n, seed + i)
        ids.append(stem)
    return ids


def _counts(ds) -> dict[str, tuple[int, int]]:
    return {s: (ds.split(s).num_images, ds.split(s).num_boxes) for s in ds.splits}


def _info(argv, capsys) -> tuple[int, dict, str]:
    code = main(["info", *map(str, argv), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def _info_counts(summary: dict) -> dict[str, tuple[int, int]]:
    return {s: (v["images"], v["boxes"]) for s, v in summary["splits"].items()}


# ------------------------------------------------------------------ folder names, any case
@pytest.mark.parametrize(
    "ann_name,img_name",
    [("ANNOTATIONS", "IMAGES"), ("annotations", "images"), ("Annotations", "jpegimages")],
)
def test_folder_names_in_any_case_and_no_imagesets_is_all_train(
    tmp_path, capsys, ann_name, img_name
):
    root = tmp_path / "voc"
    _pairs(root / ann_name, root / img_name, [2, 1, 3], seed=1, suffix=".JPG")
    _image(root / img_name / "unlabelled.jpg", 99)  # no XML, no split lists: background
    assert detect_format(root) == "voc"
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (4, 6)}
    assert sorted(ds.names) == sorted(CLASSES) and not ds.problems
    assert (ds.boxes_per_image() == 0).sum() == 1
    code, summary, err = _info([root], capsys)
    assert code == 0, err
    assert _info_counts(summary) == {"train": (4, 6)}
    assert summary["splits"]["train"]["background_images"] == 1


def test_xml_without_image_is_reported(tmp_path):
    root = tmp_path / "voc"
    _pairs(root / "Annotations", root / "JPEGImages", [1, 1], seed=2)
    _xml(root / "Annotations" / "ghost.xml", "ghost.jpg", 2, 0)
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (2, 2)}
    assert [(p.kind, Path(p.file).name) for p in ds.problems] == [
        ("label_without_image", "ghost.xml")
    ]


# ------------------------------------------------------------------ XML beside the images
@pytest.mark.parametrize("where", ["root", "images"], ids=["in-root", "in-images"])
def test_xml_beside_images(tmp_path, capsys, where):
    root = tmp_path / "labelimg"
    folder = root if where == "root" else root / "images"
    _pairs(folder, folder, [1, 2, 2, 1], seed=3)
    (root / "classes.txt").write_text("cat\ndog\nbird\n")
    ds = load_dataset(root)
    assert ds.format == "voc" and _counts(ds) == {"train": (4, 6)} and len(ds.names) == 3
    code, summary, err = _info([root], capsys)
    assert code == 0 and _info_counts(summary) == {"train": (4, 6)}, err


def test_roboflow_voc_split_folders(tmp_path, capsys):
    root = tmp_path / "rf"
    for folder, boxes, seed in (("train", [1, 2, 1], 4), ("valid", [2, 1], 5), ("test", [3], 6)):
        _pairs(root / folder, root / folder, boxes, seed)
    (root / "README.roboflow.txt").write_text("x\n")
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (3, 4), "val": (2, 3), "test": (1, 3)}
    code, summary, err = _info([root], capsys)
    assert code == 0, err
    assert _info_counts(summary) == {"train": (3, 4), "val": (2, 3), "test": (1, 3)}


# ------------------------------------------------------------------ --images / --annotations
def test_images_and_annotations_options(tmp_path, capsys):
    root = tmp_path / "odd"
    _pairs(root / "xmls", root / "pics", [1, 3, 2], seed=7)
    with pytest.raises(DatasetError, match="unknown format"):
        load_dataset(root)
    ds = load_dataset(root, annotations=root / "xmls", images=root / "pics")
    assert ds.format == "voc" and _counts(ds) == {"train": (3, 6)}
    argv = [root, "--annotations", root / "xmls", "--images", root / "pics"]
    code, summary, err = _info(argv, capsys)
    assert code == 0 and _info_counts(summary) == {"train": (3, 6)}, err


def test_annotations_without_images_lists_what_was_tried(tmp_path, capsys):
    root = tmp_path / "odd"
    _pairs(root / "xmls", root / "pics", [1, 1], seed=8)
    with pytest.raises(DatasetError, match="tried .*--images") as exc:
        load_dataset(root / "xmls", annotations=root / "xmls")
    assert "\n" not in str(exc.value)
    code = main(["info", str(root), "--annotations", str(root / "xmls")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------ split lists
@pytest.fixture
def listed(tmp_path) -> Path:
    """train.txt: a b c (+ b again in val.txt, + ghost without XML); val.txt: d e b."""
    root = tmp_path / "VOC2012"
    ids = _pairs(root / "Annotations", root / "JPEGImages", [1, 2, 1, 2, 1], seed=9)
    a, b, c, d, e = ids
    main_dir = root / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    (main_dir / "train.txt").write_text(f"{a}\n{b}\n{c}\nghost\n")
    (main_dir / "val.txt").write_text(f"{d}\n{e}\n{b}\n")
    _image(root / "JPEGImages" / "ghost.jpg", 77)  # the image is there, its XML is not
    return root


def test_listed_id_without_xml_and_image_in_two_splits(listed, capsys):
    ds = load_dataset(listed)
    lists = listed / "ImageSets" / "Main"
    b = "im_9_001"
    # b stays in val only (an evaluation split wins); ghost is not a background image
    assert _counts(ds) == {"train": (2, 2), "val": (3, 5)}
    assert not any("ghost" in p for p in ds.image_paths)
    problems = {p.kind: p for p in ds.problems}
    assert sorted(problems) == ["missing_annotation", "split_overlap"]  # no duplicate_image
    miss = problems["missing_annotation"]
    assert (miss.file, miss.line) == (str(lists / "train.txt"), 4) and "ghost" in miss.message
    overlap = problems["split_overlap"]
    assert (overlap.file, overlap.line) == (str(lists / "train.txt"), 2)
    assert b in overlap.message and f"{lists / 'val.txt'}:3" in overlap.message
    with pytest.raises(DatasetError, match="train.txt:2: split_overlap"):
        load_dataset(listed, on_error="raise")
    code, summary, err = _info([listed], capsys)
    assert code == 0, err
    assert _info_counts(summary) == {"train": (2, 2), "val": (3, 5)}
    assert summary["problem_counts"] == {"split_overlap": 1, "missing_annotation": 1}


def test_split_lists_in_any_case(listed):
    (listed / "ImageSets" / "Main").rename(listed / "ImageSets" / "main")
    (listed / "ImageSets").rename(listed / "imagesets")
    assert _counts(load_dataset(listed)) == {"train": (2, 2), "val": (3, 5)}


def test_reduce_roboflow_voc(tmp_path, capsys):
    root = tmp_path / "rf"
    for folder, boxes, seed in (("train", [1, 2, 1, 1], 4), ("valid", [2, 1], 5)):
        _pairs(root / folder, root / folder, boxes, seed)
    out = tmp_path / "out"
    argv = ["reduce", str(root), "--method", "random", "--fraction", "0.5", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert len((out / "train.txt").read_text().split()) == 2
    assert len((out / "val.txt").read_text().split()) == 2


def test_unparsable_xml_skips_its_image_not_a_background(tmp_path):
    root = tmp_path / "voc"
    ids = _pairs(root / "Annotations", root / "JPEGImages", [1, 2, 1], seed=10)
    broken = root / "Annotations" / f"{ids[1]}.xml"
    broken.write_text("<annotation><object>")
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (2, 2)}
    assert [(p.kind, p.file) for p in ds.problems] == [("malformed_annotation", str(broken))]
    assert not any(ids[1] in p for p in ds.image_paths)
