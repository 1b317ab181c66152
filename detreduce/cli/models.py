"""``detreduce models``: the detector zoo (pretrained starts offline) and the other model kinds."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from detreduce.cli.app import app
from detreduce.config import default

#: The model settings that are not zoo names, one line each (``detreduce models``).
OTHER_MODELS = [
    {
        "model": "*.yaml",
        "kind": "scratch",
        "description": "an Ultralytics model YAML (yolov8n.yaml, yolo11n.yaml, or a file): "
        "random initialisation, trained from scratch; nothing to download",
    },
    {
        "model": "*.pt",
        "kind": "weights / official",
        "description": "your own weights file (a path), or an official Ultralytics weight "
        "name (yolo11n.pt, yolov8n.pt, yolo26n.pt) not on disk: Ultralytics downloads it "
        "only with --allow-download (train.allow_download: true)",
    },
]


@app.command()
def models(
    pattern: str | None = typer.Argument(
        None, help="Only zoo models whose name matches, e.g. 'yolo-mobile*'.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON."),
) -> None:
    """List the detectors `detreduce train --model` takes.

    Zoo models are a YOLOv8n neck and Detect head on an ImageNet-pretrained backbone
    whose weights a pip package ships, so they train offline from a pretrained start:
    strides and channels of the three feature maps the neck reads, where the weights
    come from, and whether they are installed here. Model YAMLs train from scratch; .pt
    files are your own weights or official Ultralytics ones (downloaded only when
    allowed).
    """
    from detreduce.train.zoo import list_models

    specs = list_models(pattern or "*")
    allowed = bool(default("train.allow_download"))
    if as_json:
        listing = {
            "zoo": [s.to_dict() for s in specs],
            "other": OTHER_MODELS,
            "allow_download": allowed,
        }
        typer.echo(json.dumps(listing, indent=2))
        return
    table = Table(show_lines=False)
    table.add_column("model", style="bold")
    table.add_column("description")
    table.add_column("strides / channels")
    table.add_column("weights")
    for spec in specs:
        entry = spec.to_dict()
        here = "[green]installed[/green]" if entry["available"] else "[red]missing[/red]"
        table.add_row(
            spec.name,
            spec.summary,
            f"{'/'.join(map(str, spec.strides))}\n{'/'.join(map(str, spec.channels))}",
            f"{spec.weight_source}\n{here}"
            + ("" if entry["available"] else f" ({spec.package.hint()})"),
        )
    console = Console()
    if specs:
        console.print(table)
    else:
        console.print(f"no zoo model matches {pattern!r}")
    for other in OTHER_MODELS:
        console.print(f"[bold]{other['model']}[/bold] ({other['kind']}): {other['description']}")
    console.print(f"downloads of official weights: {'allowed' if allowed else 'off'} here")
