"""--val-fraction: a class-stratified, seeded val split carved from train when a dataset
has none; never reduced, recorded in the manifest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from detreduce.cli import main
from detreduce.data.load import load_dataset
from detreduce.data.splits import carve_val
from detreduce.errors import ConfigError


@pytest.fixture()
def train_only(tmp_path):
    """A YOLO dataset whose data YAML names a train split only (60 images, 3 classes)."""
    from detreduce.data.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "syn", n_images=60, imgsz=64, seed=0)
    text = data.read_text().replace("val: images/val\n", "")
    (data.parent / "train_only.yaml").write_text(text)
    return data.parent / "train_only.yaml"


def test_the_carve_is_stratified_seeded_and_changes_the_fingerprint(train_only):
    ds = load_dataset(train_only)
    assert ds.splits == ["train"]
    carved = carve_val(ds, 0.25, seed=0)
    n_train = ds.num_images
    val = carved.split_indices("val")
    assert len(val) == round(0.25 * n_train) and len(
        carved.split_indices("train")
    ) == n_train - len(val)
    # every class keeps images in both splits (stratified by each image's rarest class)
    for c in range(len(ds.names)):
        with_c = np.unique(ds.box_image[ds.box_class == c])
        assert np.isin(with_c, val).any() and (~np.isin(with_c, val)).any(), ds.names[c]
    assert carve_val(ds, 0.25, seed=0).split_indices("val").tolist() == val.tolist()
    assert carve_val(ds, 0.25, seed=1).split_indices("val").tolist() != val.tolist()
    assert carved.fingerprint() != ds.fingerprint()
    assert "carved" in carved.notes[-1] and "never reduced" in carved.notes[-1]
    with_val = replace(carved)  # a dataset that has val is left alone
    assert carve_val(with_val, 0.5) is with_val


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 0.001])
def test_bad_val_fractions_are_one_line_errors(train_only, bad):
    with pytest.raises(ConfigError, match="val_fraction") as info:
        load_dataset(train_only, val_fraction=bad)
    assert "\n" not in str(info.value)


def test_reduce_a_train_only_dataset_with_a_carved_val(train_only, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reduce", str(train_only), "--method", "random", "--fraction", "0.5",
                 "--val-fraction", "0.2", "--out", str(out)]) == 0  # fmt: skip
    n = load_dataset(train_only).num_images
    n_val = round(0.2 * n)
    manifest = json.loads((out / "selection.json").read_text())
    assert manifest["eval_splits"] == ["val"] and manifest["images_before"] == n - n_val
    assert manifest["images_after"] == round(0.5 * (n - n_val))
    assert f"carved {n_val} of {n}" in " ".join(manifest["notes"])
    val_list = (out / "val.txt").read_text().split()
    kept = set(manifest["kept_images"])
    assert len(val_list) == n_val and not kept & set(val_list)  # val is never reduced
    capsys.readouterr()


def test_reduce_without_any_val_still_writes_the_kept_list_and_says_why(
    train_only, tmp_path, capsys
):
    out = tmp_path / "no-val"
    assert main(["reduce", str(train_only), "--method", "random", "--fraction", "0.5",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out.replace("\n", " ")
    assert (
        "no data.yaml: the dataset has no val or test split" in printed
        and "--val-fraction" in printed
    )
    assert not (out / "data.yaml").exists() and (out / "train.txt").exists()
    manifest = json.loads((out / "selection.json").read_text())
    assert manifest["data_yaml"] is None and "--val-fraction" in manifest["no_data_yaml"]
    n = load_dataset(train_only).num_images
    assert len((out / "train.txt").read_text().split()) == manifest["images_after"] == round(n / 2)


def test_val_from_another_dataset_becomes_the_val_split(train_only, tmp_path, capsys):
    """--val PATH: every image of another dataset (same class names) is the val split."""
    import yaml

    other = train_only.parent / "val_only.yaml"
    other.write_text(train_only.read_text().replace("train: images/train", "train: images/val"))
    out = tmp_path / "with-val"
    assert main(["reduce", str(train_only), "--method", "random", "--fraction", "0.5",
                 "--val", str(other), "--out", str(out)]) == 0  # fmt: skip
    n_val = load_dataset(other).num_images
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert len(Path(data["val"]).read_text().split()) == n_val > 0
    manifest = json.loads((out / "selection.json").read_text())
    assert manifest["images_before"] == load_dataset(train_only).num_images
    assert any(f"val split from --val {other}" in n for n in manifest["notes"])
    renamed = train_only.parent / "renamed.yaml"
    renamed.write_text(other.read_text().replace("- circle", "- disc"))
    with pytest.raises(ConfigError, match=r"classes \['disc'\] are not classes of"):
        load_dataset(train_only, val=str(renamed))
    with pytest.raises(ConfigError, match="not both"):
        load_dataset(train_only, val=str(other), val_fraction=0.2)
