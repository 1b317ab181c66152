"""Every problem kind is found, located (file and line), skipped under warn, fatal under raise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from detreduce.data import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import DatasetError


@pytest.fixture
def syn(tmp_path) -> Path:
    return make_synthetic(tmp_path / "syn", n_images=12, n_classes=3, seed=1, coco=True)


def _label(syn: Path, split: str = "train", k: int = 0) -> Path:
    return sorted((syn.parent / "labels" / split).glob("*.txt"))[k]


def _append(path: Path, line: str) -> int:
    """Append a line; returns its 1-based line number."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


YOLO_LINE_CASES = [
    ("0 0.5 0.5 0.2", "malformed_line"),
    ("0 a 0.5 0.2 0.2", "malformed_line"),
    ("0 0.5 0.5 0.2 0.2 0.3", "malformed_line"),
    ("0 1.5 0.5 0.2 0.2", "coords_out_of_range"),
    ("0 0.5 -0.2 0.2 0.2", "coords_out_of_range"),
    ("7 0.5 0.5 0.2 0.2", "unknown_class"),
    ("1.5 0.5 0.5 0.2 0.2", "unknown_class"),
    ("0 0.5 0.5 0 0.2", "degenerate_box"),
    ("0 0.5 0.5 0.2 -0.1", "degenerate_box"),
]


@pytest.mark.parametrize("line,kind", YOLO_LINE_CASES)
def test_bad_yolo_line_is_located_and_skipped(syn, line, kind):
    label = _label(syn)
    clean = load_dataset(syn)
    lineno = _append(label, line)
    ds = load_dataset(syn)
    found = [p for p in ds.problems if p.kind == kind]
    assert len(found) == 1, ds.problems
    assert found[0].file == str(label) and found[0].line == lineno
    assert ds.num_boxes == clean.num_boxes  # the bad box is skipped, the rest kept
    with pytest.raises(DatasetError, match=f"{label.name}:{lineno}: {kind}"):
        load_dataset(syn, on_error="raise")


def test_coordinates_within_tolerance_are_clipped_not_reported(syn):
    label = _label(syn)
    _append(label, "0 0.995 0.5 0.02 0.2")  # right edge at 1.005: inside the 0.01 tolerance
    ds = load_dataset(syn)
    assert not ds.problems
    assert ds.box_xyxy[:, 2].max() <= ds.image_sizes[:, 0].max()


def test_label_without_image(syn):
    orphan = syn.parent / "labels" / "train" / "ghost.txt"
    orphan.write_text("0 0.5 0.5 0.2 0.2\n")
    ds = load_dataset(syn)
    assert [(p.kind, p.file) for p in ds.problems] == [("label_without_image", str(orphan))]


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda p: p.write_bytes(b""), "zero bytes"),
        (lambda p: p.write_bytes(b"this is not an image at all" * 10), "not a readable image"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
        (lambda p: p.unlink(), "file not found"),
    ],
)
def test_unreadable_image_is_skipped_with_its_boxes(syn, damage, reason):
    img = sorted((syn.parent / "images" / "train").glob("*.jpg"))[0]
    clean = load_dataset(syn)
    n_boxes = len(_label(syn).read_text().split("\n")) - 1
    damage(img)
    if not img.exists():  # a missing image: list it explicitly so the reader expects it
        lst = syn.parent / "train.txt"
        lst.write_text(
            "\n".join(
                str(p) for p in sorted((syn.parent / "images" / "train").glob("*.jpg")) + [str(img)]
            )
        )
        text = syn.read_text().replace("train: images/train", f"train: {lst}")
        syn.write_text(text)
    ds = load_dataset(syn)
    bad = [p for p in ds.problems if p.kind == "unreadable_image"]
    assert len(bad) == 1 and bad[0].file == str(img) and reason in bad[0].message
    assert ds.num_images == clean.num_images - 1
    assert ds.num_boxes == clean.num_boxes - n_boxes
    with pytest.raises(DatasetError, match="unreadable_image"):
        load_dataset(syn, on_error="raise")


def test_duplicate_image_keeps_the_val_copy(syn):
    val_img = sorted((syn.parent / "images" / "val").glob("*.jpg"))[0]
    copy = syn.parent / "images" / "train" / "copy_of_val.jpg"
    shutil.copy(val_img, copy)
    ds = load_dataset(syn)
    dup = [p for p in ds.problems if p.kind == "duplicate_image"]
    assert len(dup) == 1 and dup[0].file == str(copy) and str(val_img) in dup[0].message
    assert str(copy) not in set(ds.image_paths) and str(val_img) in set(ds.image_paths)
    assert len(load_dataset(syn, check_duplicates=False).image_paths) == ds.num_images + 1


def test_empty_split_is_reported(syn):
    empty = syn.parent / "images" / "test"
    empty.mkdir()
    syn.write_text(syn.read_text() + "test: images/test\n")
    ds = load_dataset(syn)
    assert [p.kind for p in ds.problems] == ["empty_split"]


def test_empty_dataset_is_fatal(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: images/train\nval: images/train\nnames: [a]\n"
    )
    with pytest.raises(DatasetError, match="no images found"):
        load_dataset(tmp_path / "data.yaml")


def test_unknown_format_is_fatal_and_says_what_is_expected(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(DatasetError, match="unknown format.*--format"):
        load_dataset(tmp_path)


def _coco(syn: Path) -> tuple[Path, dict]:
    f = syn.parent / "annotations" / "instances_train.json"
    return f, json.loads(f.read_text())


@pytest.mark.parametrize(
    "mutate,kind",
    [
        (lambda d: d["annotations"][0].update(image_id="no-such-image"), "unknown_image_id"),
        (lambda d: d["annotations"][0].update(category_id=99), "unknown_category"),
        (lambda d: d["annotations"][0].update(bbox=[1, 1, 0, 5]), "degenerate_box"),
        (lambda d: d["annotations"][0].update(iscrowd=1), "crowd_box"),
        (lambda d: d["annotations"][0].pop("bbox"), "malformed_annotation"),
    ],
)
def test_coco_annotation_problems(syn, mutate, kind):
    f, doc = _coco(syn)
    clean = load_dataset(syn.parent / "annotations")
    ann_id = doc["annotations"][0]["id"]
    mutate(doc)
    f.write_text(json.dumps(doc))
    ds = load_dataset(syn.parent / "annotations")
    found = [p for p in ds.problems if p.kind == kind]
    assert len(found) == 1 and found[0].file == str(f)
    assert f"annotation id {ann_id}" in found[0].message
    assert ds.num_boxes == clean.num_boxes - 1
    if kind == "crowd_box":
        assert load_dataset(syn.parent / "annotations", iscrowd="keep").num_boxes == clean.num_boxes
    with pytest.raises(DatasetError, match=kind):
        load_dataset(syn.parent / "annotations", on_error="raise")


def test_on_error_value_is_checked(syn):
    with pytest.raises(ValueError, match="data.on_error: expected one of warn, raise"):
        load_dataset(syn, on_error="ignore")


def test_unreadable_image_is_a_problem_even_after_ultralytics_patched_pillow(syn):
    """Ultralytics replaces PIL.Image.open on import with one that tries to install
    pi-heif on an unknown file (ModuleNotFoundError offline): a sweep imports it."""
    import PIL.Image
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)

    assert PIL.Image.open is not ultralytics.utils.patches._image_open  # patched
    img = sorted((syn.parent / "images" / "train").glob("*.jpg"))[0]
    img.with_suffix(".webp").write_bytes(b"not an image at all")
    img.unlink()
    ds = load_dataset(syn)
    bad = [p for p in ds.problems if p.kind == "unreadable_image"]
    assert len(bad) == 1 and "not a readable image" in bad[0].message
