"""``detreduce info``: what is in a dataset, and every problem found."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from detreduce.cli.app import app
from detreduce.cli.common import (
    ISCROWD_DEFAULT,
    AnnotationsOpt,
    DataArg,
    FormatOpt,
    ImagesOpt,
    IscrowdOpt,
    ValFractionOpt,
    ValOpt,
)


@app.command()
def info(
    data: DataArg,
    format: FormatOpt = None,
    iscrowd: IscrowdOpt = ISCROWD_DEFAULT,
    images: ImagesOpt = None,
    annotations: AnnotationsOpt = None,
    val: ValOpt = None,
    val_fraction: ValFractionOpt = None,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    max_problems: int = typer.Option(
        20, help="Problems listed in the text output (all in --json)."
    ),
) -> None:
    """Images per split, boxes per class, box sizes, background images and every problem.

    Never stops on a problem: every one is listed with its file (and line).
    """
    import logging

    from detreduce.data.load import load_dataset
    from detreduce.info import dataset_summary

    logging.getLogger("detreduce").setLevel(logging.ERROR)  # problems are printed below
    ds = load_dataset(
        data,
        format=format,
        on_error="warn",
        iscrowd=iscrowd,
        images=images,
        annotations=annotations,
        val=val,
        val_fraction=val_fraction,
    )
    summary = dataset_summary(ds)
    summary["notes"] = list(ds.notes)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print(summary, max_problems)


def _print(summary: dict, max_problems: int) -> None:
    console = Console()
    console.print(
        f"[bold]{summary['source']}[/] ({summary['format']}): {summary['images']} images, "
        f"{summary['boxes']} boxes, {len(summary['classes'])} classes",
        soft_wrap=True,
    )
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    splits = summary["splits"]
    table = Table(title="Boxes per class (images containing the class)")
    table.add_column("class")
    for s in splits:
        table.add_column(s, justify="right")
    for name in summary["classes"]:
        table.add_row(
            name,
            *(
                f"{splits[s]['boxes_per_class'][name]} ({splits[s]['images_per_class'][name]})"
                for s in splits
            ),
        )
    table.add_section()
    table.add_row("images", *(str(splits[s]["images"]) for s in splits))
    table.add_row("background images", *(str(splits[s]["background_images"]) for s in splits))
    table.add_row(
        "boxes/image min/median/max",
        *("{min}/{median:g}/{max}".format(**splits[s]["boxes_per_image"]) for s in splits),
    )
    for bucket in ("small", "medium", "large"):
        table.add_row(f"{bucket} boxes", *(str(splits[s]["box_sizes"][bucket]) for s in splits))
    console.print(table)
    problems = summary["problems"]
    if not problems:
        console.print("No problems found.")
        return
    counts = ", ".join(f"{k}: {v}" for k, v in summary["problem_counts"].items())
    console.print(f"[yellow]{len(problems)} problem(s)[/] ({counts}):")
    for p in problems[:max_problems]:
        where = f"{p['file']}:{p['line']}" if p["line"] is not None else p["file"]
        console.print(
            f"  {where}: {p['kind']}: {p['message']}", markup=False, highlight=False, soft_wrap=True
        )
    if len(problems) > max_problems:
        console.print(f"  ... {len(problems) - max_problems} more (see --json)")
