"""Readers on real datasets (counts parsed from the files) and on format edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from detreduce.data import detect_format, load_dataset
from detreduce.data.formats.yolo import label_path
from detreduce.data.synthetic import make_synthetic


def _per_class(ds):
    return dict(zip(ds.names, ds.class_box_counts().tolist()))


def test_bccd_voc(bccd):
    ds = load_dataset(bccd)
    assert ds.format == "voc" and ds.num_images == 364
    assert {s: len(ds.split_indices(s)) for s in ds.splits} == {"train": 205, "val": 87, "test": 72}
    counts = _per_class(ds)
    # 4,155 RBC in the files, two of them zero-area boxes that are skipped and reported
    assert counts == {"Platelets": 361, "RBC": 4153, "WBC": 372}
    bad = sorted((p.file.rsplit("/", 1)[1], p.kind) for p in ds.problems)
    assert bad == [
        ("BloodImage_00338.xml", "degenerate_box"),
        ("BloodImage_00343.xml", "degenerate_box"),
    ]
    assert all(p.line is not None for p in ds.problems)
    assert (ds.image_sizes == [640, 480]).all()


def test_aquarium_roboflow_paths_resolve_as_ultralytics_does(aquarium):
    ds = load_dataset(aquarium / "data.yaml")
    assert {s: len(ds.split_indices(s)) for s in ds.splits} == {"train": 448, "val": 127}
    train = ds.split("train")
    assert _per_class(train) == {
        "fish": 1961,
        "jellyfish": 385,
        "penguin": 330,
        "puffin": 175,
        "shark": 259,
        "starfish": 78,
        "stingray": 136,
    }
    assert (train.boxes_per_image() == 0).sum() == 1  # the one empty label file
    assert not ds.problems
    assert (ds.image_sizes.max(axis=1) <= 1024).all()


def test_chess_coco_string_ids_and_categories_from_one(chess):
    ds = load_dataset(chess)
    assert ds.format == "coco"
    assert ds.names[0] == "white-king" and len(ds.names) == 12
    assert len(ds.split_indices("train")) == 202 and len(ds.split_indices("val")) == 58
    assert ds.split("train").num_boxes == 2108
    assert (ds.image_sizes == [416, 416]).all()


def test_detect_format(bccd, aquarium, chess):
    assert detect_format(bccd) == "voc"
    assert detect_format(aquarium) == "yolo"
    assert detect_format(chess) == "coco"


def test_yolo_and_coco_forms_of_one_dataset_agree(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=20, coco=True, seed=3)
    a, b = load_dataset(data), load_dataset(tmp_path / "s" / "annotations")
    assert a.names == b.names and a.num_boxes == b.num_boxes
    np.testing.assert_allclose(a.box_xyxy, b.box_xyxy, atol=0.01)


def test_yolo_txt_lists_dict_names_and_list_of_sources(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=16, n_classes=2, seed=4)
    root = data.parent
    imgs = sorted((root / "images" / "train").glob("*.jpg"))
    (root / "first.txt").write_text("\n".join(f"./images/train/{p.name}" for p in imgs[:3]) + "\n")
    (root / "custom.yaml").write_text(
        yaml.safe_dump(
            {
                "path": str(root),
                "train": ["first.txt", "images/val"],
                "val": "images/val",
                "names": {0: "circle", 1: "square"},
            }
        )
    )
    ds = load_dataset(root / "custom.yaml")
    assert ds.names == ["circle", "square"]
    assert len(ds.split_indices("train")) == 3 + len(list((root / "images" / "val").glob("*.jpg")))


def test_polygon_labels_become_their_bounding_box(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=4, n_classes=1, boxes_per_image=(1, 1), seed=5)
    img = sorted((data.parent / "images" / "train").glob("*.jpg"))[0]
    lp = label_path(str(img))
    open(lp, "w").write("0 0.1 0.2 0.5 0.2 0.3 0.6\n")
    ds = load_dataset(data)
    i = list(ds.image_paths).index(str(img))
    _, boxes = ds.image_boxes(i)
    w, h = ds.image_sizes[i]
    np.testing.assert_allclose(boxes[0], [0.1 * w, 0.2 * h, 0.5 * w, 0.6 * h], rtol=1e-5)


def test_background_image_without_label_file(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=8, seed=6)
    lbl = sorted((data.parent / "labels" / "train").glob("*.txt"))[0]
    lbl.unlink()
    ds = load_dataset(data)
    assert (ds.boxes_per_image() == 0).sum() == 1 and not ds.problems


@pytest.mark.parametrize("bad_names", ["names: 3", "names: {1: a, 2: b}"])
def test_bad_names_fail_clearly(tmp_path, bad_names):
    data = make_synthetic(tmp_path / "s", n_images=4, seed=7)
    text = data.read_text().split("names:")[0] + bad_names + "\n"
    data.write_text(text)
    from detreduce.errors import DatasetError

    with pytest.raises(DatasetError, match="names"):
        load_dataset(data)
