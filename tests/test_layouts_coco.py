"""COCO as distributed and as labelling tools export it: small replicas built in tmp_path.

Each layout is read by ``load_dataset`` and by ``detreduce info``: images, boxes and
classes per split are asserted, and the other COCO tasks' files (captions, keypoints,
panoptic, stuff) are skipped with a note, never read as detection annotations.
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

#: COCO-style sparse category ids (COCO's own skip numbers).
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]


def _image(path: Path, seed: int, size: int = 48) -> None:
    """A tiny JPEG with distinct bytes (noise), so no two are duplicates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def _split(
    folder: Path,
    n_images: int,
    boxes: list[int],
    seed: int,
    prefix: str = "",
    cats: list[dict] = CATEGORIES,
    stem: str = "{:012d}",
) -> dict:
    """Write ``n_images`` images into ``folder`` and return their instances JSON document.

    ``boxes[i]`` boxes on image ``i``, cycling over the categories; ``prefix`` is put before
    each ``file_name`` (Label Studio's ``images/``).
    """
    cat_ids = [c["id"] for c in cats if c.get("supercategory") != "none"] or [cats[0]["id"]]
    doc = {"info": {}, "licenses": [], "images": [], "annotations": [], "categories": cats}
    ann_id = 1
    for i in range(n_images):
        name = stem.format(seed * 100 + i) + ".jpg"
        _image(folder / name, seed * 100 + i)
        doc["images"].append(
            {"id": seed * 100 + i, "file_name": prefix + name, "width": 48, "height": 48}
        )
        for k in range(boxes[i]):
            doc["annotations"].append(
                {
                    "id": seed * 1000 + ann_id,
                    "image_id": seed * 100 + i,
                    "category_id": cat_ids[(i + k) % len(cat_ids)],
                    "bbox": [2 + 3 * k, 4, 10, 12],
                    "area": 120,
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    return doc


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _decoys(ann: Path, docs: dict[str, dict]) -> list[str]:
    """The other COCO tasks' files of the same splits, each a plausible JSON with images.

    person_keypoints_* even holds person boxes: read as detection, it would load.
    """
    names = []
    for split, doc in docs.items():
        images = doc["images"]
        caps = {"images": images, "annotations": [{"id": 1, "image_id": images[0]["id"],
                                                   "caption": "a dog"}]}  # fmt: skip
        kps = {
            "images": images,
            "annotations": [
                {"id": 1, "image_id": images[0]["id"], "category_id": 1, "bbox": [1, 1, 9, 9],
                 "keypoints": [0] * 51, "num_keypoints": 0, "iscrowd": 0, "area": 81}
            ],
            "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}],
        }  # fmt: skip
        pan = {"images": images, "annotations": [{"image_id": images[0]["id"],
               "file_name": "x.png", "segments_info": []}], "categories": CATEGORIES}  # fmt: skip
        stuff = {"images": images, "annotations": [], "categories": [{"id": 92, "name": "banner"}]}
        for kind, body in (
            ("captions", caps),
            ("person_keypoints", kps),
            ("panoptic", pan),
            ("stuff", stuff),
        ):
            names.append(_write(ann / f"{kind}_{split}.json", body).name)
    return names


def _counts(ds) -> dict[str, tuple[int, int]]:
    return {s: (ds.split(s).num_images, ds.split(s).num_boxes) for s in ds.splits}


def _info(argv, capsys) -> tuple[int, dict, str]:
    code = main(["info", *map(str, argv), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def _info_counts(summary: dict) -> dict[str, tuple[int, int]]:
    return {s: (v["images"], v["boxes"]) for s, v in summary["splits"].items()}


# ------------------------------------------------------------------ COCO 2017 release
@pytest.fixture(params=["root", "images"], ids=["train2017-at-root", "images-train2017"])
def coco2017(tmp_path, request) -> tuple[Path, list[str]]:
    """``annotations/{instances,captions,person_keypoints,panoptic,stuff}_{train,val}2017``,
    images in ``train2017/``, ``val2017/`` (at the root or under ``images/``)."""
    root = tmp_path / "coco"
    img_root = root if request.param == "root" else root / "images"
    docs = {
        "train2017": _split(img_root / "train2017", 4, [2, 1, 0, 3], seed=1),
        "val2017": _split(img_root / "val2017", 2, [1, 2], seed=2),
    }
    for split, doc in docs.items():
        _write(root / "annotations" / f"instances_{split}.json", doc)
    decoys = _decoys(root / "annotations", docs)
    return root, decoys


def test_coco2017_release_reads_instances_and_skips_other_tasks(coco2017):
    root, decoys = coco2017
    assert detect_format(root) == "coco"
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (4, 6), "val": (2, 3)}
    assert ds.names == ["person", "car", "dog"]  # ids 1, 3, 18 → classes 0, 1, 2
    assert not ds.problems
    assert all(p.split("/")[-2] in ("train2017", "val2017") for p in ds.image_paths)
    assert [Path(s[0]).name for s in ds.split_sources.values()] == [
        "instances_train2017.json",
        "instances_val2017.json",
    ]
    (note,) = ds.notes  # one line saying which files were skipped and why
    assert "\n" not in note and len(decoys) == 8
    for name in decoys:
        assert name in note
    for why in ("captions", "keypoints", "panoptic segmentation", "stuff segmentation"):
        assert why in note


def test_coco2017_info_prints_counts_and_the_note(coco2017, capsys):
    root, decoys = coco2017
    code, summary, err = _info([root], capsys)
    assert code == 0, err
    assert _info_counts(summary) == {"train": (4, 6), "val": (2, 3)}
    assert summary["classes"] == ["person", "car", "dog"]
    assert len(summary["notes"]) == 1 and "captions_train2017.json" in summary["notes"][0]
    code = main(["info", str(root)])
    out = capsys.readouterr().out
    assert code == 0 and "6 images, 9 boxes, 3 classes" in out
    assert "note:" in out and "person_keypoints_val2017.json" in out


def test_one_json_of_the_release_reads_its_split(coco2017):
    root, _ = coco2017
    ds = load_dataset(root / "annotations" / "instances_val2017.json")
    assert _counts(ds) == {"val": (2, 3)}


def test_a_decoy_given_alone_is_refused_saying_why(coco2017):
    root, _ = coco2017
    with pytest.raises(DatasetError, match="no COCO detection JSON.*captions") as exc:
        load_dataset(root / "annotations" / "captions_train2017.json")
    assert "\n" not in str(exc.value)


def test_two_instances_files_for_one_split_are_refused(coco2017):
    root, _ = coco2017
    doc = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    _write(root / "annotations" / "instances_train2014.json", doc)
    with pytest.raises(DatasetError, match="both train annotations"):
        load_dataset(root)


# ------------------------------------------------------------------ Roboflow COCO
def test_roboflow_coco_split_folders_and_parent_category(tmp_path, capsys):
    """``{train,valid,test}/_annotations.coco.json`` with the images beside; Roboflow's
    category 0 (the parent of the others, used by no box) is not a class."""
    root = tmp_path / "rf"
    cats = [
        {"id": 0, "name": "pieces", "supercategory": "none"},
        {"id": 1, "name": "bishop", "supercategory": "pieces"},
        {"id": 2, "name": "king", "supercategory": "pieces"},
        {"id": 3, "name": "pawn", "supercategory": "pieces"},
    ]
    for folder, n, boxes, seed in (("train", 5, [1, 2, 3, 1, 0], 1), ("valid", 2, [2, 1], 2),
                                   ("test", 2, [1, 1], 3)):  # fmt: skip
        doc = _split(root / folder, n, boxes, seed, cats=cats)
        _write(root / folder / "_annotations.coco.json", doc)
    (root / "README.roboflow.txt").write_text("exported from roboflow\n")
    ds = load_dataset(root)
    assert ds.format == "coco"
    assert _counts(ds) == {"train": (5, 7), "val": (2, 3), "test": (2, 2)}
    assert ds.names == ["bishop", "king", "pawn"]
    assert any("'pieces' (id 0)" in n for n in ds.notes)
    code, summary, err = _info([root], capsys)
    assert code == 0, err
    assert _info_counts(summary) == {"train": (5, 7), "val": (2, 3), "test": (2, 2)}
    assert len(summary["classes"]) == 3


# ------------------------------------------------------------------ CVAT / Label Studio
def test_cvat_instances_default_with_images_folder(tmp_path, capsys):
    root = tmp_path / "cvat"
    doc = _split(root / "images", 3, [2, 0, 1], seed=4, stem="frame_{:06d}")
    _write(root / "annotations" / "instances_default.json", doc)
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (3, 3)} and len(ds.names) == 3
    code, summary, err = _info([root], capsys)
    assert code == 0 and _info_counts(summary) == {"train": (3, 3)}, err


@pytest.mark.parametrize("prefix", ["images/", "/data/upload/1/"], ids=["images-", "upload-path"])
def test_label_studio_result_json(tmp_path, capsys, prefix):
    """``result.json`` + ``images/``: file names are ``images/x.jpg`` or an upload path."""
    root = tmp_path / "ls"
    doc = _split(root / "images", 3, [1, 1, 2], seed=5, prefix=prefix, stem="{:x}-img")
    _write(root / "result.json", doc)
    ds = load_dataset(root)
    assert _counts(ds) == {"train": (3, 4)} and not ds.problems
    assert all(Path(p).parent == root / "images" for p in ds.image_paths)
    code, summary, err = _info([root], capsys)
    assert code == 0 and _info_counts(summary) == {"train": (3, 4)}, err


# ------------------------------------------------------------------ --images
@pytest.fixture
def elsewhere(tmp_path) -> tuple[Path, Path]:
    """A JSON whose images are in a folder no rule can guess."""
    doc = _split(tmp_path / "ds" / "pictures", 3, [1, 2, 1], seed=6)
    return _write(tmp_path / "ds" / "labels.json", doc), tmp_path / "ds" / "pictures"


def test_uninferable_image_folder_lists_what_was_tried(elsewhere, capsys):
    json_file, pictures = elsewhere
    with pytest.raises(DatasetError, match="tried .*--images") as exc:
        load_dataset(json_file)
    message = str(exc.value)
    assert "\n" not in message and str(json_file) in message
    assert str(json_file.parent / "images") in message and str(json_file.parent) in message
    code = main(["info", str(json_file)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "tried" in err and "Traceback" not in err


def test_images_option_says_where_they_are(elsewhere, capsys):
    json_file, pictures = elsewhere
    ds = load_dataset(json_file, images=pictures)
    assert _counts(ds) == {"train": (3, 4)}
    code, summary, err = _info([json_file, "--images", pictures], capsys)
    assert code == 0 and _info_counts(summary) == {"train": (3, 4)}, err
    code = main(["info", str(json_file), "--images", str(pictures / "nope")])
    assert code == 2 and "no such folder" in capsys.readouterr().err


def test_images_option_may_hold_a_folder_per_split(tmp_path):
    """``--images DIR`` where DIR holds ``train2017/`` and ``val2017/``."""
    store = tmp_path / "store"
    root = tmp_path / "ann_only"
    for split, n, seed in (("train2017", 3, 7), ("val2017", 2, 8)):
        _write(
            root / "annotations" / f"instances_{split}.json",
            _split(store / split, n, [1] * n, seed),
        )
    with pytest.raises(DatasetError, match="tried"):
        load_dataset(root)
    assert _counts(load_dataset(root, images=store)) == {"train": (3, 3), "val": (2, 2)}


def test_annotations_option_reads_that_json(coco2017, tmp_path):
    root, _ = coco2017
    ann = root / "annotations" / "instances_val2017.json"
    ds = load_dataset(root, annotations=ann)
    assert _counts(ds) == {"val": (2, 3)}


def test_yolo_data_refuses_folder_options(tmp_path):
    from detreduce.data.synthetic import make_synthetic
    from detreduce.errors import ConfigError

    data = make_synthetic(tmp_path / "s", n_images=4, seed=1)
    with pytest.raises(ConfigError, match="data.images"):
        load_dataset(data, images=tmp_path)


# ------------------------------------------------------------------ reduce on these layouts
def test_reduce_coco2017_writes_the_instances_subset(coco2017, tmp_path, capsys):
    root, _ = coco2017
    out = tmp_path / "out"
    code = main(["reduce", str(root), "--method", "random", "--fraction", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "instances_train.json").read_text())
    train = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    assert len(doc["images"]) == 2 and doc["categories"] == train["categories"]
    kept = {im["id"] for im in doc["images"]}
    assert len(doc["annotations"]) == sum(a["image_id"] in kept for a in train["annotations"])
    assert len((out / "val.txt").read_text().split()) == 2


def test_reduce_takes_the_images_option(tmp_path, capsys):
    store, root = tmp_path / "store", tmp_path / "ann_only"
    for split, n, seed in (("train2017", 4, 7), ("val2017", 2, 8)):
        doc = _split(store / split, n, [1] * n, seed)
        _write(root / "annotations" / f"instances_{split}.json", doc)
    out = tmp_path / "out"
    argv = ["reduce", root, "--images", store, "--method", "random", "--fraction", "0.5"]
    code = main([*map(str, argv), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert len((out / "train.txt").read_text().split()) == 2
