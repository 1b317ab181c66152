"""The COCO-scale shortcuts give what the plain ways gave (benchmarks/bench_coco_scale.py).

- polygons left unparsed (:func:`parse_instances`): the same document otherwise, the same
  error on a broken file, every polygon's bytes where its span says;
- annotations checked column by column: the problems, in order, and boxes of
  :func:`_check_annotation` applied to each in turn, on both paths (columns, one by one);
- the subset JSON: the bytes of ``json.dumps`` of the fully parsed, filtered document;
- the YOLO view filled as exports need it: the labels of a view built whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detreduce.data import load_dataset
from detreduce.data.formats import coco
from detreduce.data.formats.coco import parse_instances, write_subset
from detreduce.data.yolo_view import COMPLETE, yolo_view

POLYGON = [[10.5, 20.25, 30, 40, 1e2, -3.5e-1], [1, 2, 3, 4, 5, 6]]
RLE = {"counts": [3, 4, 5], "size": [40, 48]}


def _is_polygon_list(value) -> bool:
    numbers = (int, float)
    return isinstance(value, list) and all(
        isinstance(v, list) and all(isinstance(x, numbers) and not isinstance(x, bool) for x in v)
        for v in value
    )


def _dropped(value):
    """``value`` with each polygon-list ``segmentation`` replaced by ``[]``."""
    if isinstance(value, dict):
        return {
            k: [] if k == "segmentation" and _is_polygon_list(v) else _dropped(v)
            for k, v in value.items()
        }
    return [_dropped(v) for v in value] if isinstance(value, list) else value


@pytest.mark.parametrize(
    "doc",
    [
        {"images": [], "annotations": [{"id": 1, "segmentation": POLYGON}]},
        {"images": [], "annotations": [{"segmentation": [[]]}, {"segmentation": []}]},
        {"images": [], "annotations": [{"id": 2, "segmentation": RLE, "iscrowd": 1}]},
        {"images": [], "annotations": [{"segmentation": [[1, None]]}, {"segmentation": [1, 2]}]},
        {"images": [], "annotations": [{'x"segmentation': POLYGON, "segmentation": POLYGON}]},
        {"images": [{"file_name": 'a"segmentation": [[1]]'}], "annotations": []},
        {"images": [], "annotations": [{"segmentation": 5}, {"segmentation": POLYGON}]},
        {"info": {"segmentation": POLYGON}, "images": [], "annotations": []},
    ],
    ids=[
        "polygons",
        "empty",
        "rle",
        "not-numbers",
        "escaped-key",
        "in-a-string",
        "a-number",
        "elsewhere",
    ],
)
@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_unparsed_polygons_leave_the_rest_as_json_reads_it(doc, indent):
    raw = json.dumps(doc, indent=indent).encode()
    full = json.loads(raw)
    dropped, no_spans = parse_instances(raw)
    assert dropped == _dropped(full) and no_spans is None
    kept, spans = parse_instances(raw, keep_polygons=True)
    if spans is None:  # a number where a polygon goes: placeholders would be ambiguous
        assert kept == full and any(a.get("segmentation") == 5 for a in full["annotations"])
        return

    def restored(value):
        if isinstance(value, dict):
            return {
                k: json.loads(raw[slice(*spans[v])])
                if k == "segmentation" and type(v) is int
                else restored(v)
                for k, v in value.items()
            }
        return [restored(v) for v in value] if isinstance(value, list) else value

    assert restored(kept) == full


@pytest.mark.parametrize(
    "text",
    [
        '{"images": [], "annotations": [{"segmentation": [[1, 2]], "bbox": [1, 2, 3 4]}]}',
        '{"images": [], "annotations": [{"segmentation": [[1, 2]]}]',
    ],
    ids=["bad-token", "truncated"],
)
def test_a_broken_file_fails_as_json_says_where(text):
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    for keep in (False, True):
        with pytest.raises(json.JSONDecodeError) as got:
            parse_instances(text.encode(), keep_polygons=keep)
        assert str(got.value) == str(want.value)


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (16, 16, 3), np.uint8))


#: Annotations on images 1, "s2", 3 with every problem the checks know, in mixed order.
ANNOTATIONS = [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "segmentation": POLYGON},
    {"id": 2, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
    {"id": 3, "image_id": "s2", "category_id": 2, "bbox": [1, 2, 3, 4]},
    {
        "id": 4,
        "image_id": 3,
        "category_id": 7,
        "bbox": [1, 2, 3],
        "iscrowd": 1,
        "segmentation": RLE,
    },
    {"id": 5, "image_id": 3, "category_id": 7, "bbox": [1, 2, 3]},
    {"id": 6, "image_id": 3, "category_id": 7, "bbox": ["1.5", 2, 3, 4]},
    {"id": 7, "image_id": 3, "category_id": 7, "bbox": ["abc", 2, 3, 4]},
    {"id": 8, "image_id": 3, "category_id": 7, "bbox": [None, 2, 3, 4]},
    {"id": 9, "image_id": 3, "category_id": 7, "bbox": [1, 2, float("inf"), 4]},
    {"id": 10, "image_id": "s2", "category_id": 3, "bbox": [1, 2, 0, 4]},
    {"id": 11, "image_id": "s2", "category_id": 3, "bbox": [True, 2, 5, 4]},
    {"id": 12, "image_id": "s2", "category_id": 3, "bbox": [1.25, 2.5, 300, 400]},
    {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 1},
    {"id": 14, "image_id": 1, "category_id": 1, "bbox": [5, 6, 7, 8], "segmentation": POLYGON},
]


def _coco_dataset(root: Path, annotations: list, indent: int | None = None) -> Path:
    images = []
    for i, image_id in enumerate((1, "s2", 3)):
        _image(root / "images" / f"im{i}.jpg", i)
        images.append({"id": image_id, "file_name": f"im{i}.jpg", "width": 48, "height": 40})
    cats = [{"id": 1, "name": "a"}, {"id": 7, "name": "b"}, {"id": 3, "name": "c"}]
    doc = {"info": {}, "images": images, "annotations": annotations, "categories": cats}
    path = root / "annotations" / "instances_train.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc, indent=indent))
    return path


@pytest.mark.parametrize("iscrowd", ["skip", "keep"])
@pytest.mark.parametrize(
    "extra", [[], [{"id": 15, "image_id": 1}, "not an annotation"]], ids=["columns", "one-by-one"]
)
def test_annotation_checks_match_the_one_by_one_check(tmp_path, iscrowd, extra):
    annotations = ANNOTATIONS[:7] + extra + ANNOTATIONS[7:]
    path = _coco_dataset(tmp_path, annotations)
    ids = {1: 0, "s2": 1, 3: 2}
    classes = {1: 0, 3: 1, 7: 2}
    if not extra:  # the fast path really is taken
        assert coco._columns(annotations, ids, classes, iscrowd) is not None
    want_problems, want_image, want_class, want_xyxy = [], [], [], []
    for ann in annotations:  # the reference: each annotation checked in full, in turn
        result = coco._check_annotation(ann, ids, classes, iscrowd)
        if isinstance(result[0], str):
            want_problems.append((result[0], str(path), result[1]))
        else:
            want_image.append(result[0])
            want_class.append(result[1])
            want_xyxy.append(result[2])
    ds = load_dataset(tmp_path, iscrowd=iscrowd)
    assert [(p.kind, p.file, p.message) for p in ds.problems] == want_problems
    assert ds.box_image.tolist() == want_image and ds.box_class.tolist() == want_class
    wh = np.array([48, 40, 48, 40])
    assert np.array_equal(ds.box_xyxy, np.clip(np.array(want_xyxy), 0, wh).astype(np.float32))


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@pytest.mark.parametrize("stray", [False, True], ids=["polygons-in-annotations", "also-elsewhere"])
def test_subset_json_is_json_dumps_of_the_filtered_document(tmp_path, indent, stray):
    annotations = [a for a in ANNOTATIONS if "id" in a]
    path = _coco_dataset(tmp_path, annotations, indent)
    if stray:  # a polygon outside the annotations: the file is parsed whole
        doc = json.loads(path.read_text())
        doc["info"] = {"segmentation": POLYGON}
        path.write_text(json.dumps(doc, indent=indent))
    out = tmp_path / "subset.json"
    write_subset(path, {"im0.jpg", "im2.jpg"}, out)
    doc = json.loads(path.read_text())
    doc["images"] = [im for im in doc["images"] if im["file_name"] in ("im0.jpg", "im2.jpg")]
    ids = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a.get("image_id") in ids]
    assert out.read_text() == json.dumps(doc)


def test_view_filled_in_parts_equals_the_view_built_whole(tmp_path):
    from detreduce.data.synthetic import make_synthetic

    ds = load_dataset(make_synthetic(tmp_path / "s", n_images=24, seed=5))
    whole, _ = yolo_view(ds, root=tmp_path / "whole")
    assert (whole / COMPLETE).exists()
    part = tmp_path / "part"
    rows = [3, 1, 17]
    _, paths = yolo_view(ds, root=part, rows=rows)
    assert not (part / COMPLETE).exists()
    assert sorted(p.name for p in (part / "images").rglob("*.jpg")) == sorted(
        Path(paths[i]).name for i in rows
    )
    yolo_view(ds, root=part, rows=[1, 2])
    yolo_view(ds, root=part)
    assert (part / COMPLETE).exists()

    def labels(root):
        return {p.relative_to(root): p.read_text() for p in (root / "labels").rglob("*.txt")}

    assert labels(part) == labels(whole) and len(labels(whole)) == ds.num_images
    links = sorted((p.relative_to(part), p.resolve()) for p in (part / "images").rglob("*.jpg"))
    assert links == sorted(
        (p.relative_to(whole), p.resolve()) for p in (whole / "images").rglob("*.jpg")
    )
