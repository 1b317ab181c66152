"""Feature networks: every family ends in one pooled vector per input.

Each builder returns ``(module, weights_source, weights_hash)``; the module maps a
normalized float NCHW batch (uint8 for the non-neural fallback) to ``(B, D)`` features,
global-average-pooled. Weights come from :mod:`detreduce.features.weights`; nothing here
downloads unless ``allow_download`` was asked for.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from detreduce.errors import ConfigError, WeightsNotFoundError
from detreduce.features.weights import (
    RANDOM,
    PackageFile,
    existing_file,
    file_hash,
    hub_checkpoint,
    load_strict,
    random_init,
    read_state_dict,
)

logger = logging.getLogger("detreduce")
Built = tuple[nn.Module, str, str]
HEAD_ATTRS = ("fc", "classifier", "heads", "head")


class Pooled(nn.Module):
    """Wraps a network whose output may still be spatial: pools it to ``(B, D)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        if y.ndim == 4:
            y = y.mean((2, 3))
        return y.flatten(1)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d in a Sequential.

    Inference only: the result computes the same function with one layer fewer per
    pair (about 20 % of MobileNetV2's CPU time is BatchNorm). Subclasses of BatchNorm2d
    (timm's BatchNormAct2d also applies an activation) are left alone.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and not bn.training:
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    return module


def _strip_torchvision_head(model: nn.Module, arch: str) -> nn.Module:
    """Replace the last Linear of the classification head by Identity (pre-logits)."""
    for attr in HEAD_ATTRS:
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Identity())
            return model
        if isinstance(head, nn.Sequential):
            linear = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
            if linear:
                head[linear[-1]] = nn.Identity()
                return model
    raise ConfigError(f"torchvision model {arch!r} has no classification head to remove")


def _weights_missing(name: str, sources: list[str]) -> WeightsNotFoundError:
    return WeightsNotFoundError(
        f"backbone {name!r}: pretrained weights not found offline; "
        + "; or ".join(sources)
        + "; or pass --weights PATH (weights='random' only for an untrained baseline)"
    )


def build_torchvision(
    name: str,
    arch: str,
    weights: str | Path | None,
    allow_download: bool,
    package: PackageFile | None = None,
) -> Built:
    """A torchvision classifier without its last Linear layer (pooled pre-logits)."""
    import torchvision

    def build() -> nn.Module:
        return torchvision.models.get_model(arch, weights=None)

    if weights == RANDOM:
        model = random_init(build).eval()
        return Pooled(fuse_conv_bn(_strip_torchvision_head(model, arch))), RANDOM, RANDOM
    model = build().eval()
    head = tuple(a + "." for a in HEAD_ATTRS)
    if weights is not None:
        path = existing_file(weights, f"backbone {name!r}")
    else:
        entry = _torchvision_default_weights(arch)
        path = package.find() if package else None
        path = path or (hub_checkpoint(entry.url) if entry is not None else None)
        if path is None and allow_download and entry is not None:
            entry.get_state_dict(progress=False, check_hash=True)  # explicit download
            path = hub_checkpoint(entry.url)
        if path is None:
            sources = [package.hint()] if package else []
            if entry is not None:
                hub = Path(torch.hub.get_dir()) / "checkpoints"
                sources.append(f"put {Path(entry.url).name} into {hub}")
                sources.append("allow_download=True (--allow-download) to fetch it")
            raise _weights_missing(name, sources or ["torchvision ships no weights for it"])
    load_strict(model, read_state_dict(path), str(path), head=head)
    model = fuse_conv_bn(_strip_torchvision_head(model, arch))
    return Pooled(model), str(path), file_hash(path)


def _torchvision_default_weights(arch: str):
    import torchvision

    try:
        return torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None


def build_timm(
    name: str,
    arch: str,
    weights: str | Path | None,
    allow_download: bool,
    package: PackageFile | None = None,
    remap: Callable[[dict, nn.Module], dict] | None = None,
) -> Built:
    """A timm model created with ``num_classes=0``: its forward returns pooled pre-logits."""
    import timm

    if weights == RANDOM:
        model = random_init(lambda: timm.create_model(arch, pretrained=False, num_classes=0))
        return Pooled(model), RANDOM, RANDOM
    path = existing_file(weights, f"backbone {name!r}") if weights is not None else None
    path = path or (package.find() if package else None)
    if path is not None:
        model = timm.create_model(arch, pretrained=False)
        state = read_state_dict(path)
        if remap is not None:
            state = remap(state, model)
        load_strict(model, state, str(path), head=("classifier.", "head.", "fc."))
        model.reset_classifier(0)
        return Pooled(model), str(path), file_hash(path)
    cached = _hf_cached_file(arch)
    if cached is not None:
        model = timm.create_model(
            arch, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(cached)}
        )
        return Pooled(model), str(cached), file_hash(cached)
    if allow_download:
        model = timm.create_model(arch, pretrained=True, num_classes=0)  # explicit download
        return Pooled(model), f"timm:{arch}", _param_hash(model)
    sources = [package.hint()] if package else []
    sources.append("allow_download=True (--allow-download) to fetch it from the Hugging Face hub")
    raise _weights_missing(name, sources)


def _hf_cached_file(arch: str) -> Path | None:
    """The weights file of a timm model in the local Hugging Face cache, if present."""
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cfg = timm.get_pretrained_cfg(arch)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _param_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------- YOLO
BACKBONE_ENDS = ("SPPF", "SPP", "SPPELAN")


class YoloBackbone(nn.Module):
    """The layers of an Ultralytics detection model up to its SPPF block, then GAP.

    This is the image feature of seed paper 2403.15150 (YOLOv5m backbone after SPPF):
    the representation the detector itself learned, so selections made on it see what
    the detector sees. Runs the layer graph the way ``BaseModel._predict_once`` does.
    """

    def __init__(self, det_model: nn.Module) -> None:
        super().__init__()
        layers = list(det_model.model)
        ends = [i for i, m in enumerate(layers) if type(m).__name__ in BACKBONE_ENDS]
        if not ends:
            raise ConfigError("the YOLO model has no SPPF/SPP block to pool after")
        self.layers = nn.ModuleList(layers[: ends[0] + 1])
        self.save = set(getattr(det_model, "save", []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        saved: list[torch.Tensor | None] = []
        for m in self.layers:
            if m.f != -1:
                x = (
                    saved[m.f]
                    if isinstance(m.f, int)
                    else [x if j == -1 else saved[j] for j in m.f]
                )
            x = m(x)
            saved.append(x if m.i in self.save else None)
        return x.mean((2, 3))


def build_yolo(name: str, weights: str | Path | None) -> Built:
    """The backbone of an Ultralytics model: a ``.pt`` checkpoint, or a ``.yaml`` (random)."""
    if weights is None or weights == RANDOM:
        raise WeightsNotFoundError(
            f"backbone {name!r} needs weights=PATH (--weights): an Ultralytics detector .pt "
            "such as a best.pt you trained, or a model .yaml (e.g. yolov8n.yaml) for an "
            "explicitly untrained network"
        )
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    text = str(weights)
    if text.endswith((".yaml", ".yml")):
        try:
            model = random_init(lambda: DetectionModel(text, verbose=False))
        except FileNotFoundError:
            raise WeightsNotFoundError(f"backbone {name!r}: model YAML {text} not found") from None
        digest = hashlib.sha256(Path(text).name.encode()).hexdigest()[:8]
        logger.warning("backbone %r from %s is randomly initialized (untrained)", name, text)
        return YoloBackbone(model.float().eval().fuse(verbose=False)), text, f"{RANDOM}-{digest}"
    path = existing_file(weights, f"backbone {name!r}")
    model, _ = load_checkpoint(str(path))
    return YoloBackbone(model.float().eval().fuse(verbose=False)), str(path), file_hash(path)


# --------------------------------------------------------------- non-neural
class HistHog(nn.Module):
    """Colour histogram + HOG: a feature for machines without any weights.

    HSV histogram (16 hue × 4 saturation × 4 value bins, square-rooted: the Hellinger
    map) for colour, and HOG (Dalal & Triggs 2005: 8-px cells, 9 unsigned orientation
    bins, 2×2-cell blocks with L2-Hys) on a 64×64 grey thumbnail for shape. HOG is
    computed in numpy, batched (OpenCV 5 no longer ships ``HOGDescriptor`` in the main
    package). Each half is L2-normalized so neither dominates. Takes uint8 pixels;
    O(pixels) per image.
    """

    HIST_BINS = (16, 4, 4)
    SIDE, CELL, ORIENTATIONS = 64, 8, 9

    @property
    def dim(self) -> int:
        blocks = self.SIDE // self.CELL - 1
        return math.prod(self.HIST_BINS) + blocks * blocks * 4 * self.ORIENTATIONS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.permute(0, 2, 3, 1).to("cpu", torch.uint8).contiguous().numpy()
        n_hist = math.prod(self.HIST_BINS)
        hist = np.empty((len(images), n_hist), dtype=np.float32)
        grey = np.empty((len(images), self.SIDE, self.SIDE), dtype=np.float32)
        for i, img in enumerate(images):
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            h = cv2.calcHist([hsv], [0, 1, 2], None, list(self.HIST_BINS), [0, 180, 0, 256, 0, 256])
            hist[i] = np.sqrt(h.ravel() / max(float(h.sum()), 1.0))
            g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            grey[i] = cv2.resize(g, (self.SIDE, self.SIDE), interpolation=cv2.INTER_AREA)
        feats = np.concatenate([_unit_rows(hist), _unit_rows(self.hog(grey))], axis=1)
        return torch.from_numpy(feats)

    def hog(self, grey: np.ndarray) -> np.ndarray:
        """HOG descriptors ``(B, blocks² · 36)`` of a ``(B, SIDE, SIDE)`` float batch."""
        b, side, cell, k = len(grey), self.SIDE, self.CELL, self.ORIENTATIONS
        gx = np.zeros_like(grey)
        gy = np.zeros_like(grey)
        gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
        gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
        mag = np.hypot(gx, gy)
        angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
        bins = np.minimum((angle / (180.0 / k)).astype(np.int64), k - 1)
        cells = side // cell
        cy = (np.arange(side) // cell)[None, :, None]
        cx = (np.arange(side) // cell)[None, None, :]
        img = np.arange(b)[:, None, None]
        idx = ((img * cells + cy) * cells + cx) * k + bins
        hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=b * cells * cells * k)
        hist = hist.reshape(b, cells, cells, k)
        blocks = np.concatenate(
            [hist[:, :-1, :-1], hist[:, :-1, 1:], hist[:, 1:, :-1], hist[:, 1:, 1:]], axis=3
        )
        blocks = blocks / np.sqrt((blocks**2).sum(3, keepdims=True) + 1e-6)
        blocks = np.minimum(blocks, 0.2)  # L2-Hys: clip, renormalize
        blocks = blocks / np.sqrt((blocks**2).sum(3, keepdims=True) + 1e-6)
        return blocks.reshape(b, -1).astype(np.float32)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
