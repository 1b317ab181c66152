"""Shared fixtures: where the real datasets are, and tiny synthetic datasets.

Tests that need ../shared/datasets skip with a clear reason on a clone without it;
with ``DETREDUCE_REQUIRE_DATA=1`` (set by .ci/run) a missing dataset is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DETREDUCE_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


def shared_dataset(name: str) -> Path:
    """Path of a real dataset under ../shared/datasets, or skip (fail in CI)."""
    path = SHARED / name
    if not path.exists():
        reason = f"real dataset {name!r} not found at {path} (set DETREDUCE_SHARED_DATASETS)"
        if os.environ.get("DETREDUCE_REQUIRE_DATA") == "1":
            pytest.fail(reason + " and DETREDUCE_REQUIRE_DATA=1")
        pytest.skip(reason)
    return path


@pytest.fixture
def bccd() -> Path:
    return shared_dataset("bccd")


@pytest.fixture
def aquarium() -> Path:
    return shared_dataset("aquarium")


@pytest.fixture
def chess() -> Path:
    return shared_dataset("chess")


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path_factory, monkeypatch):
    """Keep every test's outputs and caches out of the repo's runs/ folder."""
    monkeypatch.setenv("DETREDUCE_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("YOLO_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _reset_detreduce_logger():
    """The CLI installs its own handler on the "detreduce" logger; undo it after each test."""
    import logging

    logger = logging.getLogger("detreduce")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
