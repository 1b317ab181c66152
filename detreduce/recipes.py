"""Dataset recipes (``datasets/*.yaml``): where a known dataset lives and how to get it.

Nothing is downloaded behind the user's back: :func:`find_dataset` only looks at
local copies; :func:`fetch_dataset` downloads, and says so, only when asked.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import yaml

from detreduce.config import cache_root
from detreduce.data.atomic import temp_sibling
from detreduce.errors import DatasetError

logger = logging.getLogger("detreduce")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "datasets"


def recipe(name: str) -> dict:
    path = RECIPES / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES.glob("*.yaml"))
        raise DatasetError(f"no recipe for dataset {name!r}; known: {', '.join(known)}")
    return yaml.safe_load(path.read_text())


def find_dataset(name: str) -> Path | None:
    """A local copy: ``$DETREDUCE_DATASETS/<name>``, the recipe's ``local`` paths, the cache."""
    cands = []
    if os.environ.get("DETREDUCE_DATASETS"):
        cands.append(Path(os.environ["DETREDUCE_DATASETS"]) / name)
    cands += [(REPO / p).resolve() for p in recipe(name).get("local", [])]
    cands.append(cache_root() / "datasets" / name)
    return next((p for p in cands if p.exists()), None)


def fetch_dataset(name: str, dest: Path | None = None, timeout: float = 60) -> Path:
    """Download and unpack a dataset by its recipe (explicit, logged); returns its folder."""
    r = recipe(name)
    dest = Path(dest) if dest else cache_root() / "datasets" / name
    if dest.exists():
        return dest
    logger.info("downloading %s from %s (licence: %s)", name, r["url"], r.get("licence"))
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.zip"
        try:
            with (
                urllib.request.urlopen(r["url"], timeout=timeout) as resp,
                open(archive, "wb") as f,
            ):
                shutil.copyfileobj(resp, f)
        except OSError as exc:
            raise DatasetError(
                f"cannot download {name} from {r['url']} ({exc}); offline? Download it "
                f"elsewhere and set DETREDUCE_DATASETS to the folder holding {name}/"
            ) from None
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        src = Path(tmp) / r["subdir"]
        if not src.exists():
            raise DatasetError(f"{r['url']}: archive has no {r['subdir']}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = temp_sibling(dest)  # unique: two fetches never share one
        shutil.move(str(src), staging)
        try:
            os.replace(staging, dest)
        except OSError:  # another process unpacked the same dataset first
            shutil.rmtree(staging, ignore_errors=True)
            if not dest.exists():
                raise
    return dest
