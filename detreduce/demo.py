"""``detreduce demo``: a small real sweep and its report, in about 10 minutes on 2 CPU cores.

The default dataset is BCCD (364 blood-cell photographs, Pascal VOC, MIT licence). It is
looked for at ``--data``, then where :func:`detreduce.recipes.find_dataset` looks
(``$DETREDUCE_DATASETS/bccd``, the recipe's local paths such as ``<repo>/../shared/
datasets/bccd``, the download cache); when it is in none of them it is downloaded by the
recipe in ``datasets/bccd.yaml`` (logged, with its URL; ``download=False`` forbids it).
Offline, the demo falls back to a generated synthetic dataset and says so, with the
command that gets the real data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detreduce.config import cache_root, default, output_root
from detreduce.errors import DatasetError
from detreduce.settings import SweepSettings, TrainSettings

log = logging.getLogger("detreduce")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo's data came from and where its report is."""

    report: Path
    out: Path
    data: Path
    synthetic: bool
    seconds: float


def resolve_demo_data(
    data: str | Path | None = None, *, download: bool = True, synthetic_dir: Path | None = None
) -> tuple[Path, bool]:
    """The demo's dataset and whether it is the synthetic fallback.

    Order: ``data``; a local copy of the default dataset
    (:func:`detreduce.recipes.find_dataset`); a download by its recipe (when
    ``download``); a synthetic dataset, with a warning saying how to get the real one.
    """
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder (--data)")
        return path, False
    from detreduce.recipes import fetch_dataset, find_dataset

    name = default("sweep.demo_dataset")
    local = find_dataset(name)
    if local is not None:
        log.info("demo dataset: %s", local)
        return local, False
    why = "not found locally"
    if download:
        try:
            return fetch_dataset(name), False  # logs the URL it downloads from
        except DatasetError as exc:
            why = f"not found locally, and {exc}"
    from detreduce.data.synthetic import make_synthetic

    log.warning(
        "the demo dataset %r was %s: running on a SYNTHETIC dataset instead; its numbers say "
        "nothing about real photographs. Get the real data with `detreduce fetch %s` (GitHub "
        "Shenggan/BCCD_Dataset, folder BCCD/) or set DETREDUCE_DATASETS, then rerun "
        "`detreduce demo`.",
        name,
        why,
        name,
    )
    out = synthetic_dir or cache_root() / "datasets" / "synthetic-demo"
    yaml_path = out / "data.yaml"
    if not yaml_path.exists():
        yaml_path = make_synthetic(out, n_images=240, imgsz=128, seed=0)
    return yaml_path, True


def demo_settings(
    sweep: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None
) -> tuple[SweepSettings, TrainSettings]:
    """The demo's sweep and train settings: the ``sweep.demo_*`` defaults, then ``sweep`` /
    ``train`` overrides (``None`` values keep the demo's default)."""
    demo_sweep = {k: default(f"sweep.demo_{k}") for k in ("methods", "fractions", "seeds")}
    demo_train = {
        k: default(f"sweep.demo_{k}") for k in ("model", "epochs", "imgsz", "batch", "val_every")
    }
    return (
        SweepSettings.build(demo_sweep, **dict(sweep or {})),
        TrainSettings.build(demo_train, **dict(train or {})),
    )


def run_demo(
    data: str | Path | None = None,
    out: str | Path | None = None,
    *,
    sweep: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    download: bool = True,
    overwrite: bool = False,
    on_event: Callable[[Any], None] | None = None,
) -> DemoResult:
    """Run the demo sweep (random vs a clustering and a coverage method, full-data
    baseline, one seed, the pretrained ``yolo-mobilenetv2`` start) and write its report.
    Rerunning resumes it.

    ``sweep`` and ``train`` override keys of :class:`~detreduce.settings.SweepSettings`
    and :class:`~detreduce.settings.TrainSettings` on top of the demo's defaults
    (:func:`demo_settings`); they are checked before the dataset is looked for."""
    from detreduce.report import write_report
    from detreduce.sweep import run_sweep

    t0 = time.perf_counter()
    sweep_settings, train_settings = demo_settings(sweep, train)
    path, synthetic = resolve_demo_data(data, download=download)
    out = Path(out) if out is not None else output_root() / "demo"
    result = run_sweep(
        path,
        out,
        sweep=sweep_settings,
        train=train_settings,
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
