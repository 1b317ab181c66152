"""ONNX Runtime on CPU and draft JPEG decoding: same features as torch, safe fallbacks."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch

from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError
from detreduce.features import embed_dataset, get_backbone
from detreduce.features import preprocess as pp
from detreduce.features import runtime as rt
from detreduce.features.preprocess import Preprocess

FAST = {"workers": 0, "batch_size": 4, "cache": False}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return load_dataset(make_synthetic(tmp_path_factory.mktemp("rt") / "syn", n_images=6, imgsz=96))


@pytest.fixture(scope="module")
def mobilenet():
    return get_backbone("mobilenet_v2")


def test_resolve_runtime_rules(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda:0")
    assert rt.resolve_runtime("auto", cpu, takes_uint8=False) == "onnxruntime"
    assert rt.resolve_runtime("auto", cpu, takes_uint8=True) == "torch"  # hist_hog
    assert rt.resolve_runtime("auto", cuda, takes_uint8=False) == "torch"
    assert rt.resolve_runtime("torch", cpu, takes_uint8=False) == "torch"
    with pytest.raises(ConfigError, match="runtime must be one of"):
        rt.resolve_runtime("tensorrt", cpu, takes_uint8=False)
    with pytest.raises(ConfigError, match="runs on the CPU"):
        rt.resolve_runtime("onnxruntime", cuda, takes_uint8=False)
    monkeypatch.setattr(rt, "onnxruntime_available", lambda: False)
    assert rt.resolve_runtime("auto", cpu, takes_uint8=False) == "torch"
    with pytest.raises(ConfigError, match="needs the onnxruntime package"):
        rt.resolve_runtime("onnxruntime", cpu, takes_uint8=False)


def test_onnxruntime_features_equal_torch(synth, mobilenet):
    kw = {**FAST, "image_size": 64, "crop_size": 48}
    ours = embed_dataset(synth, mobilenet, "both", runtime="auto", **kw)
    ref = embed_dataset(synth, mobilenet, "both", runtime="torch", **kw)
    assert (ours.runtime, ref.runtime) == ("onnxruntime", "torch")
    assert np.abs(ours.image - ref.image).max() < 1e-4
    assert np.abs(ours.box - ref.box).max() < 1e-4
    # the uint8 → normalized input path is inside the graph: check one row by hand
    img = pp.resize_image(pp.decode(synth.image_paths[0]), Preprocess(64))
    x = torch.from_numpy(img)[None].permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.inference_mode():
        f = mobilenet.module((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert np.abs(ours.image[0] - torch.nn.functional.normalize(f)[0].numpy()).max() < 1e-4


def test_export_is_cached_and_a_bad_file_is_replaced(mobilenet, monkeypatch):
    from detreduce.config import cache_root

    exports = []
    real = rt._export
    monkeypatch.setattr(rt, "_export", lambda w, p: exports.append(p) or real(w, p))
    assert mobilenet.with_runtime("onnxruntime", threads=1).runtime == "onnxruntime"
    assert len(exports) == 1
    assert mobilenet.with_runtime("onnxruntime", threads=1).runtime == "onnxruntime"
    assert len(exports) == 1  # the second call loads the cached file
    (path,) = (cache_root() / "onnx").glob("*.onnx")
    assert path == exports[0]
    path.write_bytes(b"not an onnx graph")  # a corrupt cache entry is exported again
    fixed = mobilenet.with_runtime("onnxruntime", threads=1)
    assert fixed.runtime == "onnxruntime" and exports == [path, path]
    pixels = torch.randint(0, 256, (3, 40, 56, 3), dtype=torch.uint8)
    ref = mobilenet.with_runtime("torch").embed(pixels)
    assert torch.allclose(fixed.embed(pixels), ref, atol=1e-4)


def test_export_failure_falls_back_to_torch_with_a_note(mobilenet, monkeypatch, caplog):
    def broken(wrapped, path):
        raise RuntimeError("exporter does not support op Foo")

    monkeypatch.setattr(rt, "_export", broken)
    monkeypatch.setattr(rt, "_onnx_path", lambda ident: rt.cache_root() / "onnx" / "none.onnx")
    with caplog.at_level(logging.INFO, logger="detreduce"):
        bb = mobilenet.with_runtime("auto", threads=1)
    assert bb.runtime == "torch" and bb.engine is None
    assert "exporter does not support op Foo" in caplog.text and "using torch" in caplog.text


def test_non_neural_backbone_stays_on_torch(synth):
    emb = embed_dataset(synth, "hist_hog", "image", runtime="auto", **FAST)
    assert emb.runtime == "torch"


def test_bad_runtime_name_is_a_config_error(synth):
    with pytest.raises(ConfigError, match="features.runtime: expected one of auto, torch"):
        embed_dataset(synth, "hist_hog", "image", runtime="fast", **FAST)


# ------------------------------------------------------------------ draft decode
@pytest.mark.parametrize(
    ("size", "resize", "wh", "factor"),
    [
        (224, "squash", (640, 480), 2),
        (224, "squash", (1024, 768), 2),
        (224, "squash", (4000, 3000), 8),
        (224, "squash", (300, 200), 1),
        (224, "squash", (0, 0), 1),  # size unknown: full decode
        (640, "letterbox", (1280, 720), 2),  # long side decides for letterbox
        (640, "letterbox", (1000, 500), 1),
    ],
)
def test_draft_factor(size, resize, wh, factor):
    assert pp.draft_factor(*wh, Preprocess(size, resize, draft=True)) == factor
    assert pp.draft_factor(*wh, Preprocess(size, resize, draft=False)) == 1


def test_reduced_decode_is_the_same_picture_smaller(tmp_path):
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), (640, 480))
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), base, [cv2.IMWRITE_JPEG_QUALITY, 95])
    full, half = pp.decode(str(path)), pp.decode(str(path), 2)
    assert full.shape == (480, 640, 3) and half.shape == (240, 320, 3)
    shrunk = cv2.resize(full, (320, 240), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - half.astype(int)).mean() < 3


def test_image_level_decodes_drafts_and_crops_decode_full(tmp_path, monkeypatch):
    ds = load_dataset(make_synthetic(tmp_path / "big", n_images=4, imgsz=512, seed=3))
    factors = []
    real = pp.decode
    monkeypatch.setattr(pp, "decode", lambda p, factor=1: factors.append(factor) or real(p, factor))
    image = embed_dataset(ds, "hist_hog", "image", **FAST)  # 128 px input: 512 / 4 covers it
    assert factors == [4] * 4 and image.params["image"]["draft"] is True
    factors.clear()
    both = embed_dataset(ds, "hist_hog", "both", **FAST)
    assert factors == [1] * 4 and both.params["image"]["draft"] is False
    factors.clear()
    embed_dataset(ds, "hist_hog", "image", draft_decode=False, **FAST)
    assert factors == [1] * 4
    # draft and full inputs give nearly the same features (both are resampled to 128 px)
    cos = (image.image * both.image).sum(1)
    assert cos.min() > 0.95


def test_draft_rows_have_their_own_cache_keys(tmp_path):
    ds = load_dataset(make_synthetic(tmp_path / "big", n_images=4, imgsz=512, seed=4))
    kw = {"workers": 0, "batch_size": 4, "cache": True}
    first = embed_dataset(ds, "hist_hog", "image", **kw)
    again = embed_dataset(ds, "hist_hog", "image", **kw)
    assert (first.computed, again.computed, again.cached) == (4, 0, 4)
    assert np.array_equal(first.image, again.image)
    # level both decodes at full size: its image rows are not served from the draft rows
    both = embed_dataset(ds, "hist_hog", "both", **kw)
    assert both.computed == 4
    full = embed_dataset(ds, "hist_hog", "image", draft_decode=False, **kw)
    assert full.computed == 0 and np.array_equal(full.image, both.image)


def test_loader_decodes_inline_when_workers_could_not_start(monkeypatch):
    import sys

    from detreduce.features import dataset as fd

    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__file__", "/nowhere/<stdin>", raising=False)
    assert not fd.workers_can_start()
    data = fd.DecodeDataset(*([np.zeros(0)] * 7), Preprocess(32), fd.CropParams(32, 0.1, 8))
    assert fd.make_loader(data, 4, workers=2, pin_memory=False).num_workers == 0
    monkeypatch.setattr(main, "__file__", __file__)
    assert fd.workers_can_start()
    assert fd.make_loader(data, 4, workers=2, pin_memory=False).num_workers == 2


def test_a_wrong_declared_size_falls_back_to_a_full_decode(tmp_path, monkeypatch):
    from detreduce.features import dataset as fd

    path = tmp_path / "small.jpg"
    cv2.imwrite(str(path), np.full((256, 256, 3), 90, np.uint8))
    factors = []
    real = pp.decode
    monkeypatch.setattr(pp, "decode", lambda p, factor=1: factors.append(factor) or real(p, factor))
    pre = Preprocess(128, draft=True)
    claims = np.array([[2048, 2048]])  # the annotation says 2048 px; the file has 256
    assert pp.draft_factor(2048, 2048, pre) == 8
    data = fd.DecodeDataset(
        np.array([str(path)], dtype=object),
        claims,
        np.zeros(2, np.int64),
        np.zeros((0, 4)),
        np.array([0]),
        np.array([True]),
        np.array([False]),
        pre,
        fd.CropParams(32, 0.1, 8),
        np.array([8]),
    )
    item = data[0]
    assert factors == [8, 1]  # 32 px draft is too small: decoded again at full size
    assert item["image"].shape == (128, 128, 3)
