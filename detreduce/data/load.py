"""``load_dataset``: one door to every supported format, detected from the path."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detreduce.data.formats.coco import find_coco_files, read_coco
from detreduce.data.formats.voc import find_voc_layout, read_voc
from detreduce.data.formats.yolo import read_yolo
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import ProblemLog, summarize
from detreduce.errors import ConfigError, DatasetError
from detreduce.settings import DataSettings

logger = logging.getLogger("detreduce")

FORMATS = ("yolo", "coco", "voc")


def detect_format(path: str | Path, annotations: str | Path | None = None) -> str:
    """``yolo`` for a data YAML, ``coco`` for an instances JSON (or a folder of them),
    ``voc`` for XML annotations (``Annotations/`` + ``JPEGImages/``, or XML beside images).

    ``annotations`` (``--annotations``), when given, decides: a JSON or a folder of JSONs
    is COCO, a folder of XML files VOC.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if annotations is not None:
        ann = Path(annotations)
        if ann.is_file() and ann.suffix.lower() == ".json":
            return "coco"
        if ann.is_dir():
            suffixes = {p.suffix.lower() for p in ann.iterdir()}
            if ".xml" in suffixes:
                return "voc"
            if ".json" in suffixes:
                return "coco"
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return "yolo"
        if path.suffix.lower() == ".json":
            return "coco"
    elif path.is_dir():
        yamls = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        if any(p.name in ("data.yaml", "data.yml") for p in yamls) or len(yamls) == 1:
            return "yolo"
        if find_voc_layout(path) is not None:
            return "voc"
        if find_coco_files(path):
            return "coco"
    raise DatasetError(
        f"{path}: unknown format: expected a YOLO data YAML, a COCO instances JSON "
        "(or a folder with annotations/*.json), or a Pascal VOC folder "
        "(Annotations/ + JPEGImages/, or XML files beside the images); "
        "pass --format yolo|coco|voc (and --annotations/--images where the folders differ)"
    )


def _yaml_in(path: Path) -> Path:
    if path.is_file():
        return path
    for name in ("data.yaml", "data.yml"):
        if (path / name).is_file():
            return path / name
    yamls = sorted(path.glob("*.y*ml"))
    if len(yamls) == 1:
        return yamls[0]
    raise DatasetError(f"{path}: no data.yaml found (pass the YAML file itself)")


def load_dataset(
    path: str | Path,
    format: str | None = None,
    on_error: str | None = None,
    *,
    settings: DataSettings | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> DetectionDataset:
    """Read a YOLO, COCO or VOC dataset into one :class:`DetectionDataset`.

    Args:
        path: a YOLO data YAML (or its folder), a COCO JSON (or a folder holding the
            JSONs, as COCO, Roboflow, CVAT or Label Studio lay them out), or a VOC folder.
        format: ``yolo``, ``coco`` or ``voc``; detected from the path when None.
        on_error: ``warn`` skips bad items (they are listed in ``dataset.problems``
            and summarized in the log); ``raise`` stops at the first one.
        settings: :class:`~detreduce.settings.DataSettings` (or a mapping of its keys),
            built once with ``DataSettings.build(settings, on_error=on_error,
            **overrides)``: ``iscrowd`` (COCO ``iscrowd`` boxes: ``skip``, counted, or
            ``keep``), ``check_duplicates`` (look for byte-identical images, later
            copies skipped), ``coord_tolerance``, and ``images`` / ``annotations`` (the
            image and annotation folders of a COCO or VOC dataset whose layout does not
            say them) may be given as keywords.

    ``val_fraction`` carves a class-stratified val split from train when the dataset has
    no val or test split (:mod:`detreduce.data.splits`; seeded by ``val_seed``).
    What the reader chose on purpose (files skipped as not detection annotations, a
    carved val split) is in ``dataset.notes`` and logged; bad items are in
    ``dataset.problems``.
    """
    cfg = DataSettings.build(settings, on_error=on_error, **overrides)
    on_error, iscrowd, check = cfg.on_error, cfg.iscrowd, cfg.check_duplicates
    log = ProblemLog(on_error)
    fmt = format or detect_format(path, cfg.annotations)
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    folders = {"images": cfg.images, "annotations": cfg.annotations}
    if fmt == "yolo":
        given = [f"data.{k}" for k, v in folders.items() if v is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} (--images/--annotations) apply to COCO and VOC "
                "datasets; a YOLO data YAML names its image folders itself"
            )
        ds = read_yolo(_yaml_in(path), log, cfg.coord_tolerance, check)
    elif fmt == "coco":
        ds = read_coco(path, log, iscrowd=iscrowd, check_duplicates=check, **folders)
    else:
        ds = read_voc(path, log, check_duplicates=check, **folders)
    if cfg.val is not None:
        from detreduce.data.splits import with_val

        if cfg.val_fraction is not None:
            raise ConfigError("give --val PATH or --val-fraction F, not both")
        # the val dataset is read with the same settings, minus what named this one's folders
        plain = dataclasses.replace(cfg, val=None, images=None, annotations=None)
        val = load_dataset(cfg.val, settings=plain)
        ds = with_val(ds, val, cfg.val)
    if cfg.val_fraction is not None:
        from detreduce.data.splits import carve_val

        ds = carve_val(ds, cfg.val_fraction, cfg.val_seed)
    for note in ds.notes:
        logger.info("%s", note)
    if ds.problems:
        logger.warning("%s: %s", path, summarize(ds.problems))
    return ds
