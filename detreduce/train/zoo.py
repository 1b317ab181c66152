"""Named detectors with ImageNet-pretrained backbones, and what a ``model`` setting means.

No COCO-pretrained YOLO weights exist offline, but ImageNet backbones do (pip packages
that ship the files, found by :mod:`detreduce.features.backbones`). A zoo model is a
YOLOv8n-style neck and Detect head (``ultralytics/cfg/models/v8/yolov8.yaml``, widths
x0.25, depths x0.33) on a pretrained backbone's stride-8/16/32 feature maps, written as
an Ultralytics model YAML: Ultralytics' own ``TorchVision`` module builds the backbone
with ``torchvision.models.get_model(name, weights=...)`` and ``Index`` picks its feature
maps. torchvision loads a named weight without a download when the file sits in
``torch.hub.get_dir()/checkpoints/`` under its URL's basename, so the package's file is
linked into a detreduce-owned hub folder (``cache_root()/torch_hub``) that is the active
torch hub only while Ultralytics builds and trains (:meth:`ResolvedModel.active`); the
user's own ``~/.cache/torch`` is never written or changed.

:func:`resolve_model` turns a ``model`` setting into what Ultralytics gets:

======================================  ==============================================
``model``                               Ultralytics gets
======================================  ==============================================
a zoo name (``yolo-mobilenetv2``)       its YAML under ``cache_root()/models/``
``*.yaml`` (``yolov8n.yaml``)           the name or path unchanged: built from scratch
a local ``*.pt``                        the file's absolute path (a zoo run's weights:
                                        with the backbone's weights linked as well)
an official name (``yolo11n.pt``) not   the name: Ultralytics fetches it, only if
on disk                                 ``train.allow_download`` (else
                                        :class:`WeightsNotFoundError`, saying how)
======================================  ==============================================
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detreduce.config import cache_root
from detreduce.errors import ConfigError, WeightsNotFoundError

#: Every zoo name is ``yolo-<backbone>``; suggestions for an unknown name compare the rest.
ZOO_PREFIX = "yolo-"
#: Folders under :func:`~detreduce.config.cache_root`: written model YAMLs, the torch hub.
MODELS_DIR, HUB_DIR = "models", "torch_hub"
#: What each kind of ``model`` setting is (``ResolvedModel.kind``).
KINDS = ("zoo", "scratch", "weights", "official")


@dataclass(frozen=True)
class ZooModel:
    """One named detector: a pretrained backbone, the feature maps it feeds the neck.

    ``backbone_rows`` are the model YAML's backbone rows (``[from, repeats, module,
    args]``); rows ``taps`` are the stride-8/16/32 feature maps the neck reads (their
    ``strides`` and ``channels`` are declared here and checked against a forward pass
    in ``tests/test_train_zoo.py``). ``weights_backbone`` names the
    :mod:`detreduce.features.backbones` spec whose pip package ships the weight file;
    ``torchvision_weights`` is the torchvision weight enum the YAML asks for: its URL's
    basename is the name torchvision looks for in the hub's ``checkpoints/``.
    """

    name: str
    summary: str
    backbone_rows: tuple[tuple[Any, ...], ...]
    taps: tuple[int, int, int]
    strides: tuple[int, int, int]
    channels: tuple[int, int, int]
    weights_backbone: str
    torchvision_weights: str
    comments: dict[int, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name.startswith(ZOO_PREFIX):
            raise ValueError(f"zoo names start with {ZOO_PREFIX!r}, got {self.name!r}")
        if self.strides != (8, 16, 32):
            raise ValueError(f"{self.name}: the YOLOv8 head needs strides (8, 16, 32)")

    # -- where the weights come from
    @property
    def weight_filename(self) -> str:
        """The file name torchvision looks for in ``<hub>/checkpoints/`` (its URL's basename)."""
        import torchvision

        return os.path.basename(torchvision.models.get_weight(self.torchvision_weights).url)

    @property
    def package(self):
        """The :class:`~detreduce.features.weights.PackageFile` that ships the weights."""
        from detreduce.features.backbones import resolve_spec

        return resolve_spec(self.weights_backbone).package

    @property
    def weight_source(self) -> str:
        """One line: which weights, from which pip package."""
        return f"torchvision {self.torchvision_weights}, from pip package {self.package.pip_name}"

    def weight_file(self) -> Path | None:
        """The weight file on this machine: the pip package's, else a torch hub download
        the user made before (read, never written); None when neither exists."""
        import torchvision

        from detreduce.features.weights import hub_checkpoint

        found = self.package.find()
        if found is not None and found.name == self.weight_filename:
            return found
        return hub_checkpoint(torchvision.models.get_weight(self.torchvision_weights).url)

    # -- the model YAML
    def rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(backbone rows, head rows) of the model YAML."""
        p3, p4, p5 = self.taps
        sppf = len(self.backbone_rows)  # SPPF on P5, as yolov8.yaml's backbone ends
        backbone = [*self.backbone_rows, (p5, 1, "SPPF", [1024, 5])]
        return backbone, _yolov8_head(p3, p4, sppf)

    def yaml_text(self) -> str:
        """The Ultralytics model YAML (``nc`` is replaced by the data's at training)."""
        import yaml

        backbone, head = self.rows()
        notes = {**self.comments, len(backbone) - 1: "SPPF on P5"}
        first_head = len(backbone)
        head_notes = {first_head + 5: "P3/8 out", first_head + 8: "P4/16 out",
                      first_head + 11: "P5/32 out"}  # fmt: skip

        def row(i: int, r: tuple[Any, ...], note: str | None) -> str:
            text = yaml.safe_dump(list(r), default_flow_style=True, width=1000).strip()
            return f"  - {text}  # {i}" + (f" {note}" if note else "")

        lines = [
            f"# {self.name}: {self.summary}",
            "# Written by detreduce.train.zoo (YOLOv8n neck and Detect head on the backbone's",
            f"# stride {'/'.join(map(str, self.strides))} maps, channels "
            f"{'/'.join(map(str, self.channels))}); weights: {self.weight_source}.",
            "nc: 80",
            "depth_multiple: 0.33  # YOLOv8n",
            "width_multiple: 0.25  # YOLOv8n (TorchVision and Index channels are not scaled)",
            "backbone:",
            *(row(i, r, notes.get(i)) for i, r in enumerate(backbone)),
            "head:",
            *(row(first_head + i, r, head_notes.get(first_head + i)) for i, r in enumerate(head)),
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able listing (``detreduce models --json``)."""
        found = self.weight_file()
        return {
            "name": self.name,
            "description": self.summary,
            "strides": list(self.strides),
            "channels": list(self.channels),
            "weights": self.weight_source,
            "weight_file": str(found) if found else None,
            "available": found is not None,
        }


def _yolov8_head(p3: int, p4: int, p5: int) -> list[tuple[Any, ...]]:
    """yolov8.yaml's head on the layers ``p3``, ``p4``, ``p5`` (numbered from ``p5 + 1``)."""
    i = p5 + 1
    return [
        (-1, 1, "nn.Upsample", [None, 2, "nearest"]),
        ([-1, p4], 1, "Concat", [1]),  # cat backbone P4
        (-1, 3, "C2f", [512]),  # i + 2
        (-1, 1, "nn.Upsample", [None, 2, "nearest"]),
        ([-1, p3], 1, "Concat", [1]),  # cat backbone P3
        (-1, 3, "C2f", [256]),  # i + 5: P3/8 out
        (-1, 1, "Conv", [256, 3, 2]),
        ([-1, i + 2], 1, "Concat", [1]),  # cat head P4
        (-1, 3, "C2f", [512]),  # i + 8: P4/16 out
        (-1, 1, "Conv", [512, 3, 2]),
        ([-1, p5], 1, "Concat", [1]),  # cat head P5
        (-1, 3, "C2f", [1024]),  # i + 11: P5/32 out
        ([i + 5, i + 8, i + 11], 1, "Detect", ["nc"]),
    ]


# ----------------------------------------------------------------------- registry
_ZOO: dict[str, ZooModel] = {}


def register_model(spec: ZooModel) -> ZooModel:
    """Add a zoo model; a name may be registered once."""
    if spec.name in _ZOO:
        raise ValueError(f"zoo model {spec.name!r} is already registered")
    _ZOO[spec.name] = spec
    return spec


# MobileNetV2 as TorchVision(unwrap, truncate=1, split=True): torchvision's `features`
# (the 19 blocks features.0-18; the classifier is cut), its output the list [input,
# features.0, ..., features.18]; Index 7 / 14 / 19 are features.6 / 13 / 18, the last maps
# at strides 8 / 16 / 32. P5 is the 1280-channel 1x1 conv the classifier pooled: against
# features.17 (320 channels, timm's feature map) it gave mAP50-95 0.472 vs 0.455 on BCCD
# and 0.150 vs 0.146 on aquarium (10 epochs, one seed: benchmarks/NOTES_pretrained.md).
register_model(
    ZooModel(
        name="yolo-mobilenetv2",
        summary="YOLOv8n neck and head on an ImageNet MobileNetV2 (torchvision)",
        backbone_rows=(
            (
                -1,
                1,
                "TorchVision",
                [1280, "mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1", True, 1, True],
            ),
            (0, 1, "Index", [32, 7]),
            (0, 1, "Index", [96, 14]),
            (0, 1, "Index", [1280, 19]),
        ),
        comments={0: "features.0-18, split", 1: "P3/8", 2: "P4/16", 3: "P5/32"},
        taps=(1, 2, 3),
        strides=(8, 16, 32),
        channels=(32, 96, 1280),
        weights_backbone="mobilenet_v2",
        torchvision_weights="MobileNet_V2_Weights.IMAGENET1K_V1",
    )
)


def list_models(pattern: str = "*") -> list[ZooModel]:
    """Zoo models whose name matches a shell-style ``pattern``, sorted by name."""
    return [_ZOO[k] for k in sorted(_ZOO) if fnmatch.fnmatch(k, pattern)]


def get_model(name: str) -> ZooModel:
    """The zoo model ``name``; an unknown name fails with "did you mean" suggestions."""
    if name in _ZOO:
        return _ZOO[name]
    stems = {k.removeprefix(ZOO_PREFIX): k for k in _ZOO}  # compare "mobilenet", not "yolo-"
    close = [stems[k] for k in difflib.get_close_matches(name.removeprefix(ZOO_PREFIX), stems, n=3)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown zoo model {name!r}.{hint} Known: {', '.join(sorted(_ZOO))} "
        "(see `detreduce models`), or a model YAML (yolov8n.yaml) or .pt file"
    )


# --------------------------------------------------------------- model settings
def official_weights(name: str) -> bool:
    """True for a weight file name Ultralytics downloads from its releases (yolo11n.pt)."""
    from detreduce.train.offline import import_ultralytics

    import_ultralytics()  # YOLO_OFFLINE before Ultralytics reads it
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return Path(name).name == name and name in GITHUB_ASSETS_NAMES


def _ultralytics_weights_dir() -> Path:
    from detreduce.train.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["weights_dir"])


def check_model(model: str, allow_download: bool = False) -> str:
    """What kind of ``model`` setting this is (one of :data:`KINDS`); raises when unusable.

    No file is written and nothing is downloaded: this is the check that
    :class:`~detreduce.settings.TrainSettings` runs before any data is read.
    """
    path = Path(model)
    if model in _ZOO:
        return "zoo"
    if path.suffix in (".yaml", ".yml"):
        return "scratch"
    if path.suffix == ".pt":
        if path.is_file():
            return "weights"
        if not official_weights(model):
            raise WeightsNotFoundError(
                f"weights file not found: {model} (not an official Ultralytics weight name, so "
                "nothing can download it; give a local .pt path, a zoo model such as "
                "yolo-mobilenetv2 (`detreduce models`) or a model YAML such as yolov8n.yaml)"
            )
        if (_ultralytics_weights_dir() / model).is_file() or allow_download:
            return "official"
        raise WeightsNotFoundError(
            f"{model} is an official Ultralytics weight that is not on this machine and "
            "downloads are off (train.allow_download: false): pass --allow-download "
            "(train.allow_download: true) to let Ultralytics fetch it, or put the file at "
            f"{path.absolute()}"
        )
    if not path.suffix:
        get_model(model)  # not a zoo name: raises with suggestions
    raise ConfigError(
        f"expected a model YAML (yolov8n.yaml), a zoo model ({', '.join(sorted(_ZOO))}; see "
        f"`detreduce models`) or a .pt file, got {model!r}"
    )


@dataclass(frozen=True)
class ResolvedModel:
    """A ``model`` setting resolved for Ultralytics.

    ``name`` is what results record (the zoo name, the YAML as given, a weight file's
    absolute path); ``source`` is what ``YOLO(...)`` gets; ``hub_dir`` (zoo models and
    their runs' weights) is the torch hub folder that must be active while Ultralytics
    builds the model, which
    it does again inside ``YOLO.train`` (the trainer rebuilds from the YAML).
    """

    name: str
    source: str
    kind: str
    hub_dir: Path | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        """Inside the block torchvision finds the zoo backbone's weights (no download).

        Sets ``torch.hub``'s folder to :attr:`hub_dir` and restores the previous one
        after, unresolved (a default that follows ``TORCH_HOME`` stays a default).
        """
        if self.hub_dir is None:
            yield
            return
        import torch.hub

        previous = torch.hub._hub_dir  # None: torch.hub.get_dir() derives it from TORCH_HOME
        torch.hub.set_dir(str(self.hub_dir))
        try:
            yield
        finally:
            torch.hub._hub_dir = previous


def resolve_model(model: str, *, allow_download: bool = False) -> ResolvedModel:
    """What Ultralytics gets for ``model`` (see the module docstring's table).

    A zoo name writes its YAML under ``cache_root()/models/`` (atomically) and links the
    backbone's weight file into ``cache_root()/torch_hub/checkpoints/``.
    """
    kind = check_model(model, allow_download)
    if kind == "zoo":
        spec = _ZOO[model]
        hub = link_weights(spec)
        return ResolvedModel(model, str(write_yaml(spec)), kind, hub)
    if kind == "weights":
        path = str(Path(model).absolute())
        hub = None
        for spec in zoo_backbones_of(path):  # a run trained from a zoo model
            hub = link_weights(spec)
        return ResolvedModel(path, path, kind, hub)
    if kind == "official":
        local = _ultralytics_weights_dir() / model
        return ResolvedModel(model, str(local) if local.is_file() else model, kind)
    return ResolvedModel(model, model, kind)


def zoo_backbones_of(checkpoint: str | Path) -> list[ZooModel]:
    """Zoo models whose pretrained backbone an Ultralytics checkpoint's model YAML names.

    Training from such a ``.pt`` (a zoo run's ``last.pt``), Ultralytics rebuilds the
    model from that YAML, ImageNet weights included, before it loads the checkpoint's
    tensors over it: the weights must be reachable then too. Reading the file unpickles
    it, as Ultralytics does right after; an unreadable one gives ``[]`` (Ultralytics then
    reports it).
    """
    import torch

    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - not ours to report; YOLO() says what is wrong
        return []
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    cfg = getattr(model, "yaml", None)
    if not isinstance(cfg, dict):
        return []
    named = {
        str(arg)
        for row in cfg.get("backbone", [])
        if len(row) == 4 and row[2] == "TorchVision"
        for arg in row[3]
    }
    return [spec for spec in _ZOO.values() if spec.torchvision_weights in named]


def write_yaml(spec: ZooModel, root: Path | None = None) -> Path:
    """Write ``spec``'s model YAML to ``<root>/<name>.yaml`` (``cache_root()/models``), atomically."""
    from detreduce.data.atomic import write_text

    path = (root or cache_root() / MODELS_DIR) / f"{spec.name}.yaml"
    text = spec.yaml_text()
    if not (path.is_file() and path.read_text() == text):
        write_text(path, text)
    return path


def link_weights(spec: ZooModel, hub: Path | None = None) -> Path:
    """Link ``spec``'s weight file into ``<hub>/checkpoints/`` under torchvision's name; the hub.

    ``hub`` defaults to detreduce's own (``cache_root()/torch_hub``). The link is made
    beside its final name and renamed over it (atomic); a missing file raises a
    one-line :class:`WeightsNotFoundError` naming the package that ships it.
    """
    from detreduce.data.atomic import temp_sibling

    hub = (hub or cache_root() / HUB_DIR).absolute()
    source = spec.weight_file()
    if source is None:
        raise WeightsNotFoundError(
            f"{spec.name}: backbone weights {spec.weight_filename} not found; {spec.package.hint()}"
        )
    target = hub / "checkpoints" / spec.weight_filename
    if target.is_symlink() and target.resolve() == source.resolve():
        return hub
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(target, "link")
    os.symlink(source.resolve(), tmp)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hub
