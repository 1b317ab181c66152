"""``detreduce demo``: a small real sweep and its report, in about 10 minutes on 2 CPU cores.

The default dataset is BCCD (364 blood-cell photographs, Pascal VOC, MIT licence). It is
looked for, in order, at ``--data``, ``$DETREDUCE_DATASETS/bccd``, ``<repo>/../shared/
datasets/bccd`` and the download cache; when it is in none of them it is downloaded
(logged, with its URL, and only if ``download=True``) by the recipe in
``datasets/bccd.yaml``. Offline, the demo falls back to a generated synthetic dataset
and says so, with the command that gets the real data.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from detreduce.config import cache_root, default, output_root
from detreduce.errors import DatasetError

log = logging.getLogger("detreduce")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "datasets"
#: Used when the recipe file is not shipped (e.g. a wheel install): where BCCD comes from.
BCCD_FALLBACK_RECIPE = {
    "name": "bccd",
    "format": "voc",
    "url": "https://github.com/Shenggan/BCCD_Dataset/archive/refs/heads/master.zip",
    "subdir": "BCCD_Dataset-master/BCCD",
    "license": "MIT",
}


@dataclass(frozen=True)
class DemoResult:
    """Where the demo's data came from and where its report is."""

    report: Path
    out: Path
    data: Path
    synthetic: bool
    seconds: float


def dataset_search_paths(name: str) -> list[Path]:
    """Folders where a named dataset is looked for, in order."""
    paths = []
    env = os.environ.get("DETREDUCE_DATASETS")
    if env:
        paths.append(Path(env) / name)
    paths.append(REPO.parent / "shared" / "datasets" / name)
    paths.append(cache_root() / "datasets" / name)
    return paths


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe ``datasets/<name>.yaml`` (source URL, licence, layout)."""
    path = RECIPES / f"{name}.yaml"
    if path.exists():
        return yaml.safe_load(path.read_text()) or {}
    if name == "bccd":
        return dict(BCCD_FALLBACK_RECIPE)
    raise DatasetError(f"no recipe for dataset {name!r} ({path} not found)")


def _recipe_url(recipe: dict[str, Any]) -> str:
    for key in ("url", "download", "archive"):
        if isinstance(recipe.get(key), str):
            return recipe[key]
    src = recipe.get("source")
    if isinstance(src, dict):
        for key in ("url", "archive", "download"):
            if isinstance(src.get(key), str):
                return src[key]
    return BCCD_FALLBACK_RECIPE["url"]


def download_dataset(name: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download a dataset by its recipe into ``dest`` (logged: URL and destination).

    The archive is unpacked into a temp folder and moved into place only when complete.
    Raises :class:`DatasetError` when offline, with what to fetch by hand.
    """
    recipe = load_recipe(name)
    url = _recipe_url(recipe)
    subdir = recipe.get("subdir") or BCCD_FALLBACK_RECIPE["subdir"]
    log.warning(
        "downloading dataset %r from %s to %s (licence: %s)",
        name,
        url,
        dest,
        recipe.get("license", "see source"),
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            blob = resp.read()
    except OSError as exc:
        raise DatasetError(
            f"cannot download {name} from {url} ({type(exc).__name__}: {exc}); fetch it by hand "
            f"and pass --data, or set DETREDUCE_DATASETS to a folder holding {name}/"
        ) from None
    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        zf.extractall(tmp)
    src = tmp / subdir
    if not src.exists():
        raise DatasetError(
            f"{url}: the archive has no {subdir}/ folder; update datasets/{name}.yaml"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(str(src), dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_demo_data(
    data: str | Path | None = None, *, download: bool = True, synthetic_dir: Path | None = None
) -> tuple[Path, bool]:
    """The demo's dataset and whether it is the synthetic fallback.

    Order: ``data``; the default dataset in :func:`dataset_search_paths`; a download by
    its recipe (when ``download``); a synthetic dataset, with a warning saying how to
    get the real one.
    """
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder (--data)")
        return path, False
    name = default("sweep.demo_dataset")
    candidates = dataset_search_paths(name)
    for path in candidates:
        if path.exists():
            log.info("demo dataset: %s", path)
            return path, False
    if download:
        try:
            return download_dataset(name, candidates[-1]), False
        except DatasetError as exc:
            log.warning("%s", exc)
    from detreduce.data.synthetic import make_synthetic

    where = ", ".join(str(p) for p in candidates)
    log.warning(
        "the demo dataset %r was not found (looked in %s) and could not be downloaded: running "
        "on a SYNTHETIC dataset instead; its numbers say nothing about real photographs. Get "
        "the real data from GitHub Shenggan/BCCD_Dataset (folder BCCD/) and rerun with "
        "`detreduce demo --data PATH/BCCD` or set DETREDUCE_DATASETS.",
        name,
        where,
    )
    out = synthetic_dir or cache_root() / "datasets" / "synthetic-demo"
    yaml_path = out / "data.yaml"
    if not yaml_path.exists():
        yaml_path = make_synthetic(out, n_images=240, imgsz=128, seed=0)
    return yaml_path, True


def run_demo(
    data: str | Path | None = None,
    out: str | Path | None = None,
    *,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    device: str | None = None,
    download: bool = True,
    overwrite: bool = False,
    on_event: Callable[[Any], None] | None = None,
) -> DemoResult:
    """Run the demo sweep (random vs a clustering and a coverage method, two fractions,
    full-data baseline, one seed) and write its report. Rerunning resumes it."""
    from detreduce.report import write_report
    from detreduce.sweep import run_sweep

    t0 = time.perf_counter()
    path, synthetic = resolve_demo_data(data, download=download)
    out = Path(out) if out is not None else output_root() / "demo"
    result = run_sweep(
        path,
        methods=list(methods or default("sweep.demo_methods")),
        fractions=list(fractions or default("sweep.demo_fractions")),
        seeds=list(seeds if seeds is not None else default("sweep.demo_seeds")),
        out=out,
        epochs=epochs or default("sweep.demo_epochs"),
        imgsz=imgsz or default("sweep.demo_imgsz"),
        batch=batch or default("sweep.demo_batch"),
        device=device,
        train_args=dict(default("sweep.demo_train_args") or {}),
        overwrite=overwrite,
        on_event=on_event,
        command="detreduce demo" + (f" --data {data}" if data else ""),
    )
    report = write_report(result.out)
    return DemoResult(
        report=report,
        out=result.out,
        data=path,
        synthetic=synthetic,
        seconds=time.perf_counter() - t0,
    )
