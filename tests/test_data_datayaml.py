"""detreduce.data.formats.datayaml: the one data-YAML parser behind both of its doors."""

from __future__ import annotations

import re

import pytest
import yaml

from detreduce.data import load_dataset
from detreduce.data.formats.datayaml import read_data_yaml
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import DatasetError
from detreduce.train.datayaml import resolve_data_yaml


@pytest.fixture
def data(tmp_path):
    return make_synthetic(tmp_path / "s", n_images=8, n_classes=2, seed=0)


def _both_doors(path):
    """(what load_dataset raised, what resolve_data_yaml raised)."""
    out = []
    for door in (load_dataset, resolve_data_yaml):
        with pytest.raises(DatasetError) as err:
            door(path)
        out.append(str(err.value))
    return out


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "train: images/train\nval: [images/val\nnames: [a, b]\n",
            r"data\.yaml:3:\d+: not valid YAML",
        ),
        ("train: images/train\n  val: images/val\n", r"data\.yaml:2:\d+: not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("train: images/train\nval: images/val\nnames: 3\n", "names"),
        (
            "train: images/train\nval: images/val\nnames: {1: a, 2: b}\n",
            "'names' keys must be 0..1",
        ),
        ("train: images/train\nval: images/val\nnames: {a: x}\n", "'names' keys must be class ids"),
        ("train: images/train\nval: images/val\nnc: 3\nnames: [a, b]\n", "'nc: 3' but 2 names"),
        ("train: images/train\nval: images/val\nnc: many\n", "'nc' must be an integer"),
    ],
)
def test_malformed_yaml_fails_alike_through_both_doors(data, text, match):
    data.write_text(text)
    for message in _both_doors(data):
        assert str(data) in message and "\n" not in message
        assert re.search(match, message), message


def test_both_doors_read_the_same_splits_and_names(data):
    cfg = yaml.safe_load(data.read_text())
    cfg.pop("path", None)
    cfg["names"] = {0: "circle", 1: "square"}
    cfg["train"] = ["images/train"]
    data.write_text(yaml.safe_dump(cfg))
    spec = read_data_yaml(data.parent)  # a folder means its data.yaml
    assert spec.source == data and spec.root == data.parent.resolve()
    assert spec.names == ["circle", "square"]
    resolved = resolve_data_yaml(data)
    ds = load_dataset(data)
    assert resolved.names == ds.names == spec.names
    assert resolved.train == [str(p) for p in spec.splits["train"]] == ds.split_sources["train"]
    assert resolved.val == [str(p) for p in spec.splits["val"]] == ds.split_sources["val"]


def test_nc_alone_names_classes(data):
    cfg = yaml.safe_load(data.read_text())
    del cfg["names"]
    cfg["nc"] = 2
    data.write_text(yaml.safe_dump(cfg))
    assert load_dataset(data).names == resolve_data_yaml(data).names == ["class_0", "class_1"]


def test_relative_path_key_under_yaml_folder_then_cwd(tmp_path, monkeypatch):
    data = make_synthetic(tmp_path / "d" / "s", n_images=6, seed=1)
    cfg = yaml.safe_load(data.read_text())
    elsewhere = tmp_path / "cfg" / "data.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(yaml.safe_dump({**cfg, "path": "d/s"}))
    monkeypatch.chdir(tmp_path)  # 'd/s' is not under cfg/, but is under the cwd
    assert read_data_yaml(elsewhere).root == data.parent.resolve()
    assert load_dataset(elsewhere).num_images == load_dataset(data).num_images
    monkeypatch.chdir(tmp_path / "cfg")
    with pytest.raises(DatasetError, match="'path: d/s' does not exist"):
        load_dataset(elsewhere)
