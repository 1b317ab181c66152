"""The one source of defaults, read by both the Python API and the CLI.

Defaults live in commented YAML files under ``detreduce/cfg/`` (one per concern, as
Ultralytics' ``cfg/default.yaml``). :mod:`detreduce.settings` builds one validated
settings object per section from them plus overrides; the API functions take those
objects and the CLI builds the same ones from its options (whose shown defaults come
from here), so the two doors can never disagree. ``default("section.key")`` reads one
value (the CLI's option defaults, the reducers' parameters).
"""

from __future__ import annotations

import difflib
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from detreduce.errors import ConfigError

CFG_DIR = Path(__file__).parent / "cfg"


@cache
def defaults() -> dict[str, dict[str, Any]]:
    """All defaults, as ``{section: {key: value}}`` (one section per cfg file)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CFG_DIR.glob("*.yaml")):
        out[path.stem] = yaml.safe_load(path.read_text()) or {}
    return out


def default(key: str) -> Any:
    """The default of ``"section.key"``; an unknown key fails with suggestions."""
    section, _, name = key.partition(".")
    table = defaults()
    if section not in table or name not in table[section]:
        known = [f"{s}.{k}" for s, keys in table.items() for k in keys]
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown setting {key!r}.{hint}")
    return table[section][name]


def output_root() -> Path:
    """Root folder of every output (``runs/`` by default, ``$DETREDUCE_RUNS`` overrides)."""
    return Path(os.environ.get("DETREDUCE_RUNS", default("data.output_root"))).absolute()


def cache_root() -> Path:
    """Where derived data (YOLO label views, embeddings) is cached, under the output root."""
    env = os.environ.get("DETREDUCE_CACHE")
    return Path(env).absolute() if env else output_root() / ".cache"
