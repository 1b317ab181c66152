"""Shared fixtures: where the real datasets are, and tiny synthetic datasets.

Tests that need ../shared/datasets skip with a clear reason on a clone without it;
with ``DETREDUCE_REQUIRE_DATA=1`` (set by .ci/run) a missing dataset is a failure.
"""

from __future__ import annotations

import logging
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


_LOGGER_AT_START = (
    list(logging.getLogger("detreduce").handlers),
    logging.getLogger("detreduce").level,
    logging.getLogger("detreduce").propagate,
)


@pytest.fixture(autouse=True)
def _reset_detreduce_logger():
    """The CLI installs its own handler on the "detreduce" logger (and stops propagation);
    put the logger back as it was before any test ran, after each test (a module-scoped
    fixture that ran the CLI would otherwise leave it changed for every later test)."""
    logger = logging.getLogger("detreduce")
    yield
    handlers, level, propagate = _LOGGER_AT_START
    logger.handlers[:], logger.level, logger.propagate = list(handlers), level, propagate
