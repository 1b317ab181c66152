"""``detreduce reduce``: choose a subset of the train split and export it for YOLO."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from detreduce.cli.app import app
from detreduce.cli.common import (
    ON_ERROR_DEFAULT,
    AnnotationsOpt,
    DataArg,
    FormatOpt,
    ImagesOpt,
    OnErrorOpt,
    ValFractionOpt,
    ValOpt,
    parse_budget,
)
from detreduce.config import default


@app.command()
def reduce(
    data: DataArg,
    method: str = typer.Option(
        default("reduce.method"), help="Selection method (see `detreduce methods`)."
    ),
    fraction: str = typer.Option(
        str(default("reduce.fraction")),
        help="Share of train images to keep, in (0, 1], written with a decimal point "
        "(0.25; 1.0 keeps all), or a whole number of images (100; 2 keeps two images, "
        "and the output says so).",
    ),
    seed: int = typer.Option(
        default("reduce.seed"), help="Seed of every random choice (recorded)."
    ),
    out: Path | None = typer.Option(None, help="Output folder (default: runs/reduce/<name>)."),
    balance: str | None = typer.Option(
        None, help="Class balance: none, classes or classes+boxes (default from cfg/balance.yaml)."
    ),
    backbone: str = typer.Option(
        default("features.backbone"), help="Embedding backbone for feature-based methods."
    ),
    level: str = typer.Option(
        default("reduce.level"), help="Embeddings to select on: image or box (crops)."
    ),
    device: str = typer.Option(
        default("features.device"), help="Embedding device: auto, cpu or cuda:N."
    ),
    format: FormatOpt = None,
    images: ImagesOpt = None,
    annotations: AnnotationsOpt = None,
    val: ValOpt = None,
    val_fraction: ValFractionOpt = None,
    on_error: OnErrorOpt = ON_ERROR_DEFAULT,
    overwrite: bool = typer.Option(False, help="Replace an existing output folder."),
) -> None:
    """Keep a FRACTION of the train split with METHOD and write an Ultralytics data YAML.

    val/test are never reduced. The output folder holds data.yaml (train it with
    `yolo train data=OUT/data.yaml`), the kept list and selection.json (the manifest).
    """
    from detreduce.data.load import load_dataset
    from detreduce.reduce import check_output, reduce_dataset
    from detreduce.settings import BalanceSettings, DataSettings, FeatureSettings, ReduceSettings

    console = Console()
    check_output(out, overwrite)  # before the settings below import the method catalog
    # The same objects reduce_dataset takes, built (and checked) once from the options.
    settings = ReduceSettings.build(
        method=method, fraction=parse_budget(fraction), seed=seed, level=level
    )
    balance_settings = BalanceSettings.build(mode=balance)
    embedding = FeatureSettings.build(backbone=backbone, device=device)
    reading = DataSettings.build(
        on_error=on_error,
        images=images,
        annotations=annotations,
        val=val,
        val_fraction=val_fraction,
    )
    if settings.is_count:
        n = settings.fraction
        console.print(
            f"keeping {n} image{'s' if n != 1 else ''} (--fraction {fraction} is an image "
            "count; write a share with a decimal point, e.g. 0.5 or 1.0)"
        )
    # Read here (every setting is checked above): reduce_dataset takes the dataset itself,
    # so --images/--annotations reach the one reader (load_dataset) through DataSettings.
    dataset = load_dataset(data, format, settings=reading)
    result = reduce_dataset(
        dataset,
        settings=settings,
        out=out,
        balance=balance_settings,
        embedding=embedding,
        on_error=reading.on_error,
        overwrite=overwrite,
    )
    manifest = json.loads((result.out_dir / "selection.json").read_text())
    table = Table(
        title=f"{settings.method}: {len(result.kept)} of {result.images_before} train images kept"
    )
    for col in ("class", "images before", "images after", "boxes before", "boxes after"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for name, before in manifest["classes_before"].items():
        after = manifest["classes_after"][name]
        table.add_row(
            name,
            str(before["images"]),
            str(after["images"]),
            str(before["boxes"]),
            str(after["boxes"]),
        )
    console.print(table)
    for key, label in (("epsilon", "image"), ("epsilon_box", "box crops")):
        block = (result.figures or {}).get(key)
        if isinstance(block, dict) and "overall" in block:
            console.print(
                f"ε-representativeness ({label}, {block.get('metric', '')}): {block['overall']}"
            )
    if result.data_yaml is None:
        from detreduce.data.export import NO_EVAL_REASON

        written = sorted(p.name for p in result.out_dir.iterdir())
        console.print(
            f"wrote {', '.join(written)} in {result.out_dir}; no data.yaml: {NO_EVAL_REASON}",
            soft_wrap=True,
        )
        return
    console.print(f"wrote {result.data_yaml}", soft_wrap=True)
    console.print(
        f"train it: yolo train data={result.data_yaml} model=yolov8n.yaml", soft_wrap=True
    )
