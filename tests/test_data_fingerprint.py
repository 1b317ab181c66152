"""DetectionDataset.fingerprint: one dataset, one fingerprint, however its path is spelled."""

from __future__ import annotations

import os

import pytest

from detreduce.config import cache_root
from detreduce.data import load_dataset
from detreduce.data.model import resolved_paths
from detreduce.data.synthetic import make_synthetic
from detreduce.data.yolo_view import yolo_view


@pytest.fixture
def spelled(tmp_path, monkeypatch):
    """A dataset in tmp_path/work/s, a symlink tmp_path/link -> it, cwd = tmp_path/work."""
    work = tmp_path / "work"
    make_synthetic(work / "s", n_images=8, coco=True, seed=0)
    os.symlink(work / "s", tmp_path / "link")
    monkeypatch.chdir(work)
    return tmp_path


# the same folder as: relative, relative with '..', absolute, absolute via a symlink,
# relative via the symlink, resolved
SPELLINGS = ["s", "../work/s", "{tmp}/work/s", "{tmp}/link", "../link", "{real}/work/s"]


@pytest.mark.parametrize("sub", ["data.yaml", "annotations"], ids=["yolo", "coco"])
def test_one_fingerprint_whatever_the_spelling(spelled, sub):
    real = spelled.resolve()
    paths = [s.format(tmp=spelled, real=real) + "/" + sub for s in SPELLINGS]
    datasets = [load_dataset(p) for p in paths]
    assert len({ds.fingerprint() for ds in datasets}) == 1
    # what users see as the source is the path they gave (made absolute), not resolved
    assert datasets[3].source.startswith(str(spelled / "link"))
    assert datasets[0].source != datasets[3].source
    # and so one YOLO label view in the cache, not one per spelling
    roots = {yolo_view(ds)[0] for ds in datasets}
    assert roots == {cache_root() / "yolo" / datasets[0].fingerprint()}
    assert len(list((cache_root() / "yolo").iterdir())) == 1


def test_content_still_changes_the_fingerprint(spelled):
    ds = load_dataset("s/annotations")
    other = ds.subset(list(range(ds.num_images - 1)))
    assert other.fingerprint() != ds.fingerprint()


def test_resolved_paths_equal_path_resolve(spelled):
    from pathlib import Path

    (spelled / "work" / "s" / "images" / "extra").mkdir()
    img = next((spelled / "work" / "s" / "images" / "train").glob("*.jpg"))
    os.symlink(img, spelled / "work" / "s" / "images" / "extra" / "alias.jpg")
    given = [
        "s/images/train/" + img.name,
        str(spelled / "link" / "images" / "train" / img.name),
        "../link/images/extra/alias.jpg",  # a symlinked file is followed too
        "s/images/missing.jpg",  # a file that does not exist: its folder still resolves
        "s/images/..",
    ]
    assert resolved_paths(given) == [str(Path(p).resolve()) for p in given]
