"""Option types shared by several commands, built from the one source of defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detreduce.config import default

DataArg = Annotated[
    Path,
    typer.Argument(
        help="Dataset: a YOLO data.yaml (or its folder), a COCO JSON (or a folder with "
        "annotations/*.json), or a Pascal VOC folder.",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Force the format: yolo, coco or voc (default: detected)."),
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


def parse_budget(text: str) -> float | int:
    """``0.25`` is a fraction, ``100`` an image count (``1.0`` is everything)."""
    from detreduce.errors import ConfigError

    try:
        return int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise ConfigError(
            f"--fraction must be a fraction in (0, 1] or an image count, got {text!r}"
        ) from None
