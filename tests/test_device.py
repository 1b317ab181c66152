"""detreduce.device: every spelling → one Device, with its torch and Ultralytics views."""

from __future__ import annotations

import pytest
import torch

from detreduce import device as device_mod
from detreduce.device import Device, parse_device
from detreduce.errors import ConfigError


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` CUDA GPUs (and, with ``mps=True``, Apple's MPS)."""

    def set_(n: int, mps: bool = False) -> None:
        monkeypatch.setattr(device_mod, "_cuda_count", lambda: n)
        monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)

    return set_


@pytest.mark.parametrize(
    ("given", "n_gpus", "torch_str", "ultra_str"),
    [
        ("auto", 0, "cpu", "cpu"),
        ("auto", 2, "cuda:0", "0"),
        (None, 1, "cuda:0", "0"),
        ("", 0, "cpu", "cpu"),
        ("cpu", 2, "cpu", "cpu"),
        (" CPU ", 0, "cpu", "cpu"),
        ("0", 1, "cuda:0", "0"),
        (0, 1, "cuda:0", "0"),
        ("1", 2, "cuda:1", "1"),
        ("0,1", 2, "cuda:0", "0,1"),
        ("1, 0", 2, "cuda:1", "1,0"),
        ("cuda", 1, "cuda:0", "0"),
        ("cuda:1", 2, "cuda:1", "1"),
        ("CUDA:0,1", 2, "cuda:0", "0,1"),
        (torch.device("cpu"), 0, "cpu", "cpu"),
        (torch.device("cuda", 1), 2, "cuda:1", "1"),
        (Device("cuda", (1,)), 0, "cuda:1", "1"),  # already parsed: taken as is
    ],
)
def test_spellings(gpus, given, n_gpus, torch_str, ultra_str):
    gpus(n_gpus)
    dev = parse_device(given)
    assert (dev.torch, dev.ultralytics) == (torch_str, ultra_str)
    assert torch.device(dev.torch).type == dev.kind  # a valid torch device string


def test_mps_when_torch_has_it(gpus):
    gpus(0, mps=True)
    assert parse_device("mps") == Device("mps")
    assert (parse_device("mps").torch, parse_device("mps").ultralytics) == ("mps", "mps")
    gpus(0, mps=False)
    with pytest.raises(ConfigError, match="mps"):
        parse_device("mps")


@pytest.mark.parametrize(
    ("given", "n_gpus", "match"),
    [
        ("gpu", 2, r"device must be one of auto, cpu.*got 'gpu'"),
        ("cuda:x", 2, "got 'cuda:x'"),
        ("-1", 2, "got '-1'"),
        ("0,", 2, "got '0,'"),
        ("0;1", 2, "got '0;1'"),
        ("tpu", 2, "got 'tpu'"),
        ("0", 0, "'0' requested but this machine has 0 CUDA device"),
        ("cuda", 0, "has 0 CUDA device"),
        ("auto", 0, None),  # no GPU is fine for auto: the CPU
        ("cuda:2", 2, r"has 2 CUDA device\(s\) \(indices 0..1\)"),
        ("0,2", 2, "has 2 CUDA device"),
        ("0,0", 2, "names a GPU twice"),
    ],
)
def test_bad_values_and_missing_gpus_raise(gpus, given, n_gpus, match):
    gpus(n_gpus)
    if match is None:
        assert parse_device(given).kind == "cpu"
        return
    with pytest.raises(ConfigError, match=match):
        parse_device(given)


def test_device_is_a_frozen_checked_value():
    dev = Device("cuda", (0, 1))
    with pytest.raises(AttributeError):
        dev.kind = "cpu"  # type: ignore[misc]
    assert dev == Device("cuda", (0, 1)) and hash(dev) == hash(Device("cuda", (0, 1)))
    with pytest.raises(ConfigError):
        Device("cpu", (0,))
    with pytest.raises(ConfigError):
        Device("cuda")
    with pytest.raises(ConfigError):
        Device("gpu")


def test_this_machine():
    """Unpatched: auto gives what torch sees."""
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert parse_device("auto").torch == expected
