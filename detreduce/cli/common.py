"""Option types shared by several commands, built from the one source of defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detreduce.config import default

DataArg = Annotated[
    Path,
    typer.Argument(
        help="Dataset: a YOLO data.yaml (or its folder), a COCO JSON or its dataset folder "
        "(as COCO 2017, Roboflow, CVAT or Label Studio lay it out), or a Pascal VOC folder "
        "(Annotations/ + JPEGImages/, XML beside the images, or a folder per split).",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Force the format: yolo, coco or voc (default: detected)."),
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="COCO/VOC: the image folder, where the layout does not say it (COCO: the "
        "folder the JSON's file names are relative to, or one holding a folder per split).",
        show_default=False,
    ),
]
AnnotationsOpt = Annotated[
    Path | None,
    typer.Option(
        "--annotations",
        help="COCO: the instances JSON (or a folder of them); VOC: the folder of XML files. "
        "Read instead of the ones found under DATA.",
        show_default=False,
    ),
]
ValOpt = Annotated[
    Path | None,
    typer.Option(
        "--val",
        help="A dataset without a val split: use this dataset (any format, same class "
        "names) as its val split.",
        show_default=False,
    ),
]
ValFractionOpt = Annotated[
    float | None,
    typer.Option(
        "--val-fraction",
        help="A dataset without a val (or test) split: carve this share of train into val, "
        "stratified by class and seeded (never reduced; recorded in selection.json).",
        show_default=False,
    ),
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="warn: skip bad items and print a summary; raise: stop at the first problem.",
    ),
]
ON_ERROR_DEFAULT = default("data.on_error")
ISCROWD_DEFAULT = default("data.iscrowd")
IscrowdOpt = Annotated[
    str, typer.Option("--iscrowd", help="COCO iscrowd boxes: skip (counted) or keep.")
]


TrainArgOpt = Annotated[
    list[str],
    typer.Option(
        "--train-arg",
        help="Another Ultralytics train argument KEY=VALUE (value read as YAML: 0.02, true, "
        "[1, 2]), repeatable, e.g. --train-arg lr0=0.02 --train-arg nbs=8. Settings that "
        "have their own option (epochs, imgsz, batch, device, seed, ...) are refused here.",
    ),
]


def parse_key_values(items: list[str], option: str = "--train-arg") -> dict:
    """``["nbs=8", "lr0=0.02"]`` → ``{"nbs": 8, "lr0": 0.02}`` (values read as YAML scalars)."""
    import yaml

    from detreduce.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{option} {item!r}: the value is not valid YAML") from None
    return out


def parse_budget(text: str) -> float | int:
    """``0.25`` is a share, ``100`` (a whole number, no decimal point) an image count.

    ``1.0`` keeps everything, ``1`` keeps one image: the CLI says which it read.
    """
    from detreduce.errors import ConfigError

    try:
        return int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise ConfigError(
            f"--fraction: expected a share in (0, 1] (e.g. 0.25) or a whole image count "
            f"(e.g. 100), got {text!r}"
        ) from None


# Training-budget options of `train` and `sweep` (defaults: cfg/train.yaml).
BudgetOpt = Annotated[
    str,
    typer.Option(
        "--budget",
        help="epochs: every run trains --epochs | steps: reduced runs train epochs/fraction "
        "(equal optimizer steps, capped) | converge: train until val mAP50-95 has not "
        "improved for --patience epochs, at most --max-epochs.",
    ),
]
MaxEpochsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-epochs", help="budget=converge trains at most this many epochs (default: --epochs)."
    ),
]
PatienceOpt = Annotated[
    int,
    typer.Option(
        "--patience",
        help="budget=converge stops when the best val mAP50-95 is this many epochs old.",
    ),
]
ValEveryOpt = Annotated[
    str,
    typer.Option(
        "--val-every",
        help="Validate every N epochs during training and record the curve (time-to-accuracy); "
        "0: final weights only; auto: 1 under converge, else 0.",
    ),
]
AllowDownloadOpt = Annotated[
    bool,
    typer.Option(
        "--allow-download/--no-allow-download",
        help="Let Ultralytics download an official --model weight (yolo11n.pt) not on disk.",
    ),
]
