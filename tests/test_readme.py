"""The README's quick start and CI run the same test command (so CI tests what users run)."""

from __future__ import annotations

import re

from conftest import REPO


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S).group(1)
    return [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    cmds = _quick_start_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("detreduce demo")
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    test_cmd = _quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci


def test_torch_pin_excludes_the_cpu_wheel_without_torchvision():
    text = (REPO / "pyproject.toml").read_text()
    assert '"torch>=2.4,!=2.13.*"' in text
    import torch
    import torchvision
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2], torchvision.__version__
