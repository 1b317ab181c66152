"""export_embeddings with ``level='both'``: the box rows round-trip, in both formats."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import OutputExistsError
from detreduce.features import embed_dataset, export_embeddings
from detreduce.features.export import boxes_path


@pytest.fixture(scope="module")
def emb(tmp_path_factory):
    ds = load_dataset(make_synthetic(tmp_path_factory.mktemp("syn"), n_images=10, imgsz=64))
    indices = ds.split_indices("train")  # a subset: image rows are not 0..n-1
    emb = embed_dataset(
        ds, "hist_hog", "both", indices=indices, cache=False, workers=0, batch_size=4
    )
    assert emb.num_boxes > 0 and emb.num_images < ds.num_images
    return emb


def _image_path_of_boxes(emb):
    row = {int(i): p for i, p in zip(emb.image_indices, emb.paths)}
    return [row[int(i)] for i in emb.box_image]


def test_npz_both_round_trips_box_rows(emb, tmp_path):
    with np.load(export_embeddings(emb, None, tmp_path / "e.npz")) as z:
        assert list(z["paths"]) == list(emb.paths)
        assert np.array_equal(z["embeddings"], emb.image)
        assert np.array_equal(z["image_indices"], emb.image_indices)
        assert np.array_equal(z["box_embeddings"], emb.box)
        assert np.array_equal(z["box_image"], emb.box_image)
        assert np.array_equal(z["box_index"], emb.box_index)
        assert np.array_equal(z["box_class"], emb.box_class)
        assert list(z["box_paths"]) == _image_path_of_boxes(emb)
    assert stat.S_IMODE(os.stat(tmp_path / "e.npz").st_mode) == 0o666 & ~_umask()


def test_parquet_both_writes_a_box_file(emb, tmp_path):
    import pyarrow.parquet as pq

    out = export_embeddings(emb, None, tmp_path / "e.parquet")
    images = pq.read_table(out)
    assert images.column_names == ["path", "embedding"]
    assert np.allclose(np.array(images.column("embedding").to_pylist()), emb.image)
    boxes = pq.read_table(boxes_path(out))
    assert boxes_path(out) == tmp_path / "e.boxes.parquet"
    assert boxes.column_names == ["path", "image_index", "box_index", "class", "embedding"]
    assert boxes.column("path").to_pylist() == _image_path_of_boxes(emb)
    assert boxes.column("image_index").to_pylist() == emb.box_image.tolist()
    assert boxes.column("box_index").to_pylist() == emb.box_index.tolist()
    assert boxes.column("class").to_pylist() == emb.box_class.tolist()
    assert np.allclose(np.array(boxes.column("embedding").to_pylist()), emb.box)
    # the box file counts as an output too: no silent overwrite of it
    out.unlink()
    with pytest.raises(OutputExistsError, match="boxes.parquet"):
        export_embeddings(emb, None, tmp_path / "e.parquet")
    export_embeddings(emb, None, tmp_path / "e.parquet", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.boxes.parquet", "e.parquet"]


def test_image_level_export_is_unchanged(emb, tmp_path):
    import dataclasses

    image_only = dataclasses.replace(emb, box=None)
    with np.load(export_embeddings(image_only, None, tmp_path / "e.npz")) as z:
        assert sorted(z.files) == ["embeddings", "paths"]
    export_embeddings(image_only, None, tmp_path / "e.parquet")
    assert not boxes_path(tmp_path / "e.parquet").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
