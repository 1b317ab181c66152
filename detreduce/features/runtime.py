"""CPU inference through ONNX Runtime: the same features as torch, in less time.

On a CPU, PyTorch's eager MobileNetV2 spends most of its time in depthwise
convolutions; ONNX Runtime's fused kernels run the same graph about 2× faster at
224 px and 1.4× faster at 112 px (measured on 2 cores; benchmarks/NOTES_embed.md),
with features equal to torch's to ~1e-5. A backbone is exported once per weights hash
to ``cache_root()/onnx/``, then loaded by every later run. The exported graph takes the
raw uint8 NHWC batch and returns L2-normalized features, so normalization and the
layout change run inside ONNX Runtime too.

Anything that goes wrong (onnxruntime missing, an op the exporter cannot write, an
exported graph whose output disagrees with torch) falls back to torch with a one-line
note; nothing silent changes the features.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detreduce.config import cache_root
from detreduce.data.atomic import atomic_path
from detreduce.errors import ConfigError

logger = logging.getLogger("detreduce")

RUNTIMES = ("auto", "torch", "onnxruntime")
OPSET = 17
FORMAT_VERSION = 1
#: largest |onnx − torch| accepted on the unit-norm features of a check batch
TOLERANCE = 1e-3

Engine = Callable[[np.ndarray], np.ndarray]


class _FromUInt8(nn.Module):
    """uint8 NHWC pixels → normalized float NCHW → backbone → L2-normalized rows."""

    def __init__(self, module: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("scale", scale.detach().cpu().float())
        self.register_buffer("shift", shift.detach().cpu().float())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).float() * self.scale + self.shift
        return F.normalize(self.module(x).float(), dim=1)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(runtime: str, device: torch.device, takes_uint8: bool) -> str:
    """``auto`` → onnxruntime for a neural backbone on CPU when installed, else torch."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "onnxruntime":
        if device.type != "cpu":
            raise ConfigError(f"runtime 'onnxruntime' runs on the CPU here; got device {device}")
        if not onnxruntime_available():
            raise ConfigError("runtime 'onnxruntime' needs the onnxruntime package (pip install)")
    if runtime == "auto":
        cpu_net = device.type == "cpu" and not takes_uint8
        return "onnxruntime" if cpu_net and onnxruntime_available() else "torch"
    return runtime


def onnx_engine(
    module: nn.Module,
    affine: tuple[torch.Tensor, torch.Tensor],
    ident: dict,
    threads: int,
) -> Engine | None:
    """A function uint8 NHWC → float32 unit rows running ``module`` in ONNX Runtime.

    Args:
        module: the backbone (float NCHW → pooled features), on the CPU, eval mode.
        affine: ``(scale, shift)`` with ``x_norm = x_uint8 * scale + shift``.
        ident: what identifies the weights and preprocessing (the export's cache key).
        threads: ONNX Runtime intra-op threads.

    Returns None (after a one-line note) when the backbone cannot run there.
    """
    wrapped = _FromUInt8(module, *affine).eval()
    path = _onnx_path(ident)
    problem = ""
    for attempt in range(2):  # a cached file that fails or disagrees is exported again
        try:
            if attempt or not path.is_file():
                _export(wrapped, path)
            run = _session_runner(str(path), path.stat().st_mtime_ns, max(1, int(threads)))
            err = _disagreement(wrapped, run)
        except Exception as exc:  # exporter/runtime failure → torch, never a crash
            problem = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            continue
        if err <= TOLERANCE:
            return run
        problem = f"its features differ from torch's by {err:.2g}"
    logger.info("onnxruntime cannot run this backbone (%s); using torch", problem)
    return None


def _onnx_path(ident: dict) -> Path:
    blob = {**ident, "opset": OPSET, "torch": torch.__version__, "v": FORMAT_VERSION}
    text = json.dumps(blob, sort_keys=True, default=str)
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(ident.get("backbone")))
    return cache_root() / "onnx" / f"{name}-{digest}.onnx"


def _export(wrapped: nn.Module, path: Path) -> None:
    """Write the graph under a temp name, then rename: a killed export leaves nothing."""
    example = torch.zeros((2, 64, 64, 3), dtype=torch.uint8)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={
                    "pixels": {0: "batch", 1: "height", 2: "width"},
                    "features": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )


@lru_cache(maxsize=8)
def _session_runner(path: str, mtime_ns: int, threads: int) -> Engine:
    """One ONNX Runtime session per (file version, threads), reused across calls."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning workers burn the cores that DataLoader workers and other jobs need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def run(pixels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixels, dtype=np.uint8)
        return session.run(["features"], {"pixels": x})[0]

    return run


def _disagreement(wrapped: nn.Module, run: Engine) -> float:
    """Largest |onnx − torch| on a fixed random batch (catches a stale or wrong export)."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (2, 64, 80, 3), dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        want = wrapped(pixels).numpy()
    got = run(pixels.numpy())
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max())
