"""embed_dataset on small synthetic data: rows, keys, single decode, cache, export, CLI."""

from __future__ import annotations

import dataclasses
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from detreduce.config import cache_root
from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError, DatasetError, OutputExistsError
from detreduce.features import embed_dataset, export_embeddings, get_backbone
from detreduce.features import preprocess as pp

FAST = {"workers": 0, "batch_size": 4}


@pytest.fixture
def synth(tmp_path):
    """A 16-image synthetic dataset (copied per test so files can be changed)."""
    return load_dataset(make_synthetic(tmp_path / "syn", n_images=16, imgsz=96, seed=1))


def _unit(a: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1, atol=1e-3))


def test_image_and_box_rows_are_keyed_and_normalized(synth):
    emb = embed_dataset(synth, "hist_hog", "both", cache=False, **FAST)
    assert emb.image.shape == (16, emb.dim) and emb.image.dtype == np.float32
    assert _unit(emb.image) and _unit(emb.box)
    assert emb.box.shape == (synth.num_boxes, emb.dim)
    # every dataset box exactly once, keyed by (image, box index, class)
    assert sorted(emb.box_index.tolist()) == list(range(synth.num_boxes))
    assert (synth.box_image[emb.box_index] == emb.box_image).all()
    assert (synth.box_class[emb.box_index] == emb.box_class).all()
    # a crop row is the backbone's embedding of that box's crop
    bb = get_backbone("hist_hog")
    for j in (0, len(emb.box) - 1):
        img = pp.decode(synth.image_paths[emb.box_image[j]])
        crop = pp.crop_boxes(img, synth.box_xyxy[emb.box_index[j]][None], 112, 0.15, 32)
        ref = bb.embed(torch.from_numpy(crop)).numpy()[0]
        assert np.allclose(emb.box[j], ref, atol=1e-5)


def test_levels_agree_and_one_decode_per_image(synth, monkeypatch):
    calls = []
    real = pp.decode
    monkeypatch.setattr(
        pp, "decode", lambda path, factor=1: calls.append(path) or real(path, factor)
    )
    both = embed_dataset(synth, "hist_hog", "both", cache=False, **FAST)
    assert sorted(calls) == sorted(synth.image_paths.tolist())  # once each, for both levels
    image = embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    box = embed_dataset(synth, "hist_hog", "box", cache=False, **FAST)
    assert image.box is None and box.image is None
    assert np.allclose(both.image, image.image) and np.allclose(both.box, box.box)


def test_indices_choose_and_order_rows(synth):
    idx = np.array([5, 2, 9])
    emb = embed_dataset(synth, "hist_hog", "both", indices=idx, cache=False, **FAST)
    full = embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    assert (emb.image_indices == idx).all()
    assert list(emb.paths) == list(synth.image_paths[idx])
    assert np.allclose(emb.image, full.image[idx])
    assert set(emb.box_image.tolist()) <= set(idx.tolist())
    assert len(emb.box_index) == int(np.isin(synth.box_image, idx).sum())
    with pytest.raises(ConfigError, match="repeat"):
        embed_dataset(synth, "hist_hog", indices=[1, 1], cache=False)


def test_imagewise_classwise_is_the_mean_crop_per_image_and_class(synth):
    emb = embed_dataset(synth, "hist_hog", "box", cache=False, **FAST)
    keys, mat = emb.imagewise_classwise(normalize=False)
    pairs = {(int(i), int(c)) for i, c in zip(emb.box_image, emb.box_class, strict=True)}
    assert {tuple(k) for k in keys.tolist()} == pairs and len(keys) == len(pairs)
    for row, (i, c) in enumerate(keys.tolist()):
        sel = (emb.box_image == i) & (emb.box_class == c)
        assert np.allclose(mat[row], emb.box[sel].mean(0), atol=1e-6)
    _, unit = emb.imagewise_classwise()
    assert _unit(unit)
    image_only = embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    with pytest.raises(ConfigError, match="level='box'"):
        image_only.imagewise_classwise()


def test_float16_storage(synth):
    a = embed_dataset(synth, "hist_hog", "both", cache=False, **FAST)
    b = embed_dataset(synth, "hist_hog", "both", dtype="float16", cache=False, **FAST)
    assert b.image.dtype == np.float16 and b.box.dtype == np.float16
    assert np.allclose(a.image, b.image, atol=2e-3)


def test_cache_reuses_and_recomputes_only_changed_or_added_images(synth):
    first = embed_dataset(synth, "hist_hog", "both", **FAST)
    assert first.computed == 16 and first.cached == 0
    assert any((cache_root() / "embeddings").iterdir())
    again = embed_dataset(synth, "hist_hog", "both", **FAST)
    assert again.computed == 0 and again.cached == 16
    assert np.array_equal(again.image, first.image) and np.array_equal(again.box, first.box)

    # change one image's pixels: only that image is recomputed, and its row changes
    path = synth.image_paths[3]
    img = cv2.imread(path)
    cv2.imwrite(path, 255 - img)
    changed = embed_dataset(synth, "hist_hog", "both", **FAST)
    assert changed.computed == 1
    assert not np.allclose(changed.image[3], first.image[3])
    others = np.arange(16) != 3
    assert np.array_equal(changed.image[others], first.image[others])

    # add an image (a copy under a new name): only it is computed
    new = path.replace(".jpg", "_copy.jpg")
    shutil.copy(synth.image_paths[0], new)
    grown = dataclasses.replace(
        synth,
        image_paths=np.append(synth.image_paths, new),
        image_sizes=np.vstack([synth.image_sizes, synth.image_sizes[:1]]),
        image_splits=np.append(synth.image_splits, "train"),
    )
    added = embed_dataset(grown, "hist_hog", "image", **FAST)
    assert added.computed == 1 and added.cached == 16
    assert np.allclose(added.image[16], added.image[0])


def test_moving_one_box_recomputes_only_its_image_crops(synth):
    embed_dataset(synth, "hist_hog", "both", **FAST)
    moved = dataclasses.replace(synth, box_xyxy=synth.box_xyxy.copy())
    moved.box_xyxy[0] += 5
    emb = embed_dataset(moved, "hist_hog", "both", **FAST)
    assert emb.computed == 1  # the image row is cached, its crops are not


def test_interrupted_run_resumes(synth):
    def stop_after_two_batches(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_dataset(
            synth, "hist_hog", "image", progress=stop_after_two_batches, shard_images=4, **FAST
        )
    resumed = embed_dataset(synth, "hist_hog", "image", **FAST)
    assert resumed.computed == 8 and resumed.cached == 8
    fresh = embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    assert np.allclose(resumed.image, fresh.image)
    assert not list(cache_root().rglob("*.tmp"))  # no half-written shard left behind


def test_cache_keys_backbone_weights_and_preprocessing(synth):
    embed_dataset(synth, "mobilenet_v2", "image", image_size=32, **FAST)
    other_size = embed_dataset(synth, "mobilenet_v2", "image", image_size=40, **FAST)
    other_weights = embed_dataset(
        synth, "mobilenet_v2", "image", image_size=32, weights="random", **FAST
    )
    assert other_size.computed == 16 and other_weights.computed == 16
    same = embed_dataset(synth, "mobilenet_v2", "image", image_size=32, **FAST)
    assert same.computed == 0


def test_workers_decode_in_parallel_processes_and_match(synth):
    a = embed_dataset(synth, "hist_hog", "both", cache=False, workers=2, batch_size=4)
    b = embed_dataset(synth, "hist_hog", "both", cache=False, **FAST)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.box, b.box)


def test_undecodable_image_is_a_one_line_dataset_error(synth):
    with open(synth.image_paths[2], "wb") as f:
        f.write(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="cannot decode") as err:
        embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    assert "\n" not in str(err.value)
    os.remove(synth.image_paths[2])
    with pytest.raises(DatasetError, match="cannot read"):
        embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)


def test_device_and_parameter_validation(synth):
    # every spelling is tested in tests/test_device.py; here: embed_dataset uses the parser
    with pytest.raises(ConfigError, match="device must be one of auto, cpu"):
        embed_dataset(synth, "hist_hog", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device"):
            embed_dataset(synth, "hist_hog", device="cuda:0")
    with pytest.raises(ConfigError, match="level"):
        embed_dataset(synth, "hist_hog", "boxes")
    with pytest.raises(ConfigError, match="dtype"):
        embed_dataset(synth, "hist_hog", dtype="int8")


def test_export_npz_and_parquet(synth, tmp_path):
    emb = embed_dataset(synth, "hist_hog", "image", cache=False, **FAST)
    npz = export_embeddings(emb, None, tmp_path / "e.npz")
    with np.load(npz) as z:
        assert list(z["paths"]) == list(synth.image_paths)
        assert np.array_equal(z["embeddings"], emb.image)
    import pyarrow.parquet as pq

    table = pq.read_table(export_embeddings(emb, None, tmp_path / "e.parquet"))
    assert table.column_names == ["path", "embedding"]
    assert table.column("path").to_pylist() == list(synth.image_paths)
    assert np.allclose(np.array(table.column("embedding").to_pylist()), emb.image)
    with pytest.raises(OutputExistsError):
        export_embeddings(emb, None, tmp_path / "e.npz")
    with pytest.raises(ConfigError, match=".npz or .parquet"):
        export_embeddings(emb, None, tmp_path / "e.csv")


def test_cli_embed_exports_and_reports(tmp_path, capsys):
    from detreduce.cli import main

    data = make_synthetic(tmp_path / "cli", n_images=8, imgsz=64)
    out = tmp_path / "emb.npz"
    args = ["embed", str(data), "--backbone", "hist_hog", "--level", "both", "--workers", "0"]
    assert main([*args, "--split", "train", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "computed" in printed and str(out) in printed
    with np.load(out) as z:
        assert z["embeddings"].shape[0] == len(z["paths"]) == 6  # train split of 8
    assert main([*args, "--out", str(out)]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["embed", str(data), "--backbone", "mobilenet_v9"]) == 2
    assert "unknown backbone" in capsys.readouterr().err
