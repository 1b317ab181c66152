"""Make Ultralytics train and validate without network access or writes into datasets.

Ultralytics reaches out to the network in a few hidden places (8.4.x):

- ``check_det_dataset`` calls ``check_font("Arial.ttf")``, which sends an HTTP HEAD to
  GitHub to download the font for plots, on every training run;
- the CUDA AMP self-check downloads ``yolo26n.pt`` to compare FP32 and AMP outputs;
- ``import ultralytics`` resolves two DNS names to decide whether it is online, and
  when online, sends usage analytics (``settings["sync"]``).

It also writes ``labels/<split>.cache`` next to every label folder it reads, which
would modify shared, read-only datasets. :func:`offline_ultralytics` patches these
places for the duration of a ``with`` block (and restores them), without touching
the user's persistent Ultralytics settings. Call :func:`import_ultralytics` instead of
``import ultralytics`` so ``YOLO_OFFLINE`` is set before Ultralytics reads it.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("detreduce")

# GPUs that Ultralytics' own AMP check blacklists (NaN losses with AMP).
_BAD_AMP_GPUS = re.compile(
    r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)",
    re.IGNORECASE,
)


def import_ultralytics() -> Any:
    """Import ultralytics with ``YOLO_OFFLINE=1`` (unless the user set it) and return it."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics

    return ultralytics


def local_font(font: str | Path = "Arial.ttf", *args: Any, **kwargs: Any) -> Path:
    """A font file that exists locally: Ultralytics' cached copy if any, else matplotlib's.

    Replaces ``check_font``, which downloads Arial from GitHub when it is missing.
    """
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    cached = Path(USER_CONFIG_DIR) / Path(font).name
    if cached.exists():
        return cached
    return Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))


def offline_check_amp(model: Any, *args: Any, **kwargs: Any) -> bool:
    """Ultralytics' AMP decision without its download: AMP on CUDA unless the GPU is blacklisted."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    return not _BAD_AMP_GPUS.search(torch.cuda.get_device_name(device))


def guarded_cache_saver(original: Any, allowed_roots: Iterable[Path]) -> Any:
    """Wrap ``save_dataset_cache_file`` so ``*.cache`` files are written only under ``allowed_roots``.

    Elsewhere (e.g. shared datasets) the cache is skipped: Ultralytics rescans the
    labels next time, which costs seconds, never correctness.
    """
    roots = [Path(r).resolve() for r in allowed_roots]

    def save(prefix: str, path: Path, x: dict, version: str) -> None:
        x["version"] = version  # Ultralytics reads this back from x, saved or not
        target = Path(path).resolve()
        if any(target.is_relative_to(root) for root in roots):
            original(prefix, path, x, version)
        else:
            log.debug("not writing Ultralytics label cache %s (outside %s)", target, roots)

    return save


@contextmanager
def offline_ultralytics(cache_roots: Iterable[Path] = ()) -> Iterator[None]:
    """Patch Ultralytics' download and dataset-write points inside the block.

    ``cache_roots``: folders where Ultralytics may write its ``labels.cache`` files
    (e.g. the run folder and detreduce's cache of exported label views).
    """
    import_ultralytics()
    import ultralytics.data.dataset as ul_dataset
    import ultralytics.data.utils as ul_data_utils
    import ultralytics.engine.trainer as ul_trainer
    import ultralytics.utils.checks as ul_checks
    import ultralytics.utils.events as ul_events
    import ultralytics.utils.plotting as ul_plotting

    patches: list[tuple[Any, str, Any]] = [
        (ul_data_utils, "check_font", local_font),
        (ul_plotting, "check_font", local_font),
        (ul_checks, "check_font", local_font),
        (ul_trainer, "check_amp", offline_check_amp),
        (
            ul_dataset,
            "save_dataset_cache_file",
            guarded_cache_saver(ul_dataset.save_dataset_cache_file, cache_roots),
        ),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    events_enabled = getattr(ul_events.events, "enabled", False)
    try:
        for module, name, value in patches:
            setattr(module, name, value)
        ul_events.events.enabled = False  # no analytics, even if imported while online
        with warnings.catch_warnings():
            # With Ray installed, Ultralytics' Ray Tune callback asks for a trial id after
            # every epoch and Ray warns when no Tune session runs (detreduce's Ray backend
            # runs plain tasks): the warning says nothing about the run.
            warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)
            yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
        ul_events.events.enabled = events_enabled


@contextmanager
def quiet_ultralytics(verbose: bool) -> Iterator[None]:
    """Lower Ultralytics' logger to warnings inside the block unless ``verbose``."""
    logger = logging.getLogger("ultralytics")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
