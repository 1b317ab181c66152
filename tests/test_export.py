"""Export: data.yaml that Ultralytics can read, manifest, atomicity, no overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from detreduce.data import load_dataset
from detreduce.data.export import export_selection
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError, OutputExistsError


@pytest.fixture
def ds(tmp_path):
    return load_dataset(make_synthetic(tmp_path / "s", n_images=24, coco=True, seed=2))


def test_export_writes_yaml_list_and_manifest(ds, tmp_path):
    train = ds.split_indices("train")
    kept = train[::2]
    data_yaml = export_selection(ds, kept, tmp_path / "out", method="random", fraction=0.5, seed=3)
    cfg = yaml.safe_load(data_yaml.read_text())
    assert cfg["names"] == dict(enumerate(ds.names))
    listed = (tmp_path / "out" / "train.txt").read_text().split()
    assert len(listed) == len(kept)
    assert all(p.startswith("/") for p in listed)
    val = open(cfg["val"]).read().split()
    assert len(val) == len(ds.split_indices("val"))  # never reduced
    # every listed image has its label where Ultralytics looks for it, with the right boxes
    for row, p in zip(kept, listed):
        label = p.rsplit("/images/", 1)
        label = label[0] + "/labels/" + label[1].rsplit(".", 1)[0] + ".txt"
        n_lines = len([ln for ln in open(label).read().splitlines() if ln.strip()])
        assert n_lines == (ds.box_image == row).sum()
    m = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert m["method"] == "random" and m["seed"] == 3 and m["fraction"] == 0.5
    assert m["images_after"] == len(kept) and m["images_before"] == len(train)
    assert m["dataset"]["fingerprint"] == ds.fingerprint()
    before = sum(c["boxes"] for c in m["classes_before"].values())
    after = sum(c["boxes"] for c in m["classes_after"].values())
    assert before == ds.split("train").num_boxes and after == ds.subset(kept).num_boxes


def test_export_keeps_dataset_folder_pristine(ds, tmp_path):
    src = tmp_path / "s"
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    export_selection(ds, ds.split_indices("train")[:3], tmp_path / "out", method="random")
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before


def test_coco_subset_json(ds, tmp_path):
    ds = load_dataset(tmp_path / "s" / "annotations")
    assert ds.format == "coco"
    kept = ds.split_indices("train")[:5]
    export_selection(ds, kept, tmp_path / "out", method="random")
    doc = json.loads((tmp_path / "out" / "instances_train.json").read_text())
    assert len(doc["images"]) == 5
    assert len(doc["annotations"]) == ds.subset(kept).num_boxes


def test_existing_output_needs_overwrite_and_survives_failure(ds, tmp_path):
    out = tmp_path / "out"
    export_selection(ds, ds.split_indices("train")[:3], out, method="random")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_selection(ds, ds.split_indices("train")[:4], out, method="random")
    with pytest.raises(ConfigError):  # a val image in the selection: fails before writing
        export_selection(ds, ds.split_indices("val")[:1], out, method="random", overwrite=True)
    assert len((out / "train.txt").read_text().split()) == 3
    export_selection(ds, ds.split_indices("train")[:4], out, method="random", overwrite=True)
    assert len((out / "train.txt").read_text().split()) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("kept", [[], [0, 0]])
def test_bad_selection_is_rejected(ds, tmp_path, kept):
    train = ds.split_indices("train")
    with pytest.raises(ConfigError):
        export_selection(
            ds, np.asarray([train[k] for k in kept], dtype=int), tmp_path / "o", method="x"
        )
