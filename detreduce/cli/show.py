"""``detreduce show``: one self-contained HTML page of a reduction (kept vs dropped)."""

from __future__ import annotations

from pathlib import Path

import typer

from detreduce.cli.app import app
from detreduce.cli.common import FormatOpt
from detreduce.config import default


@app.command()
def show(
    out: Path = typer.Argument(
        ...,
        help="An output folder of `detreduce reduce` (holds selection.json).",
        show_default=False,
    ),
    per_class: int = typer.Option(
        default("reduce.show_per_class"),
        "--per-class",
        help="Thumbnails per class and side (kept / dropped), spread evenly over file names.",
    ),
    thumb_size: int = typer.Option(
        default("reduce.show_thumb_size"),
        "--thumb-size",
        help="Longest thumbnail side in pixels.",
    ),
    max_points: int = typer.Option(
        default("reduce.show_max_points"),
        "--max-points",
        help="Most images on the embedding map (more: an even subsample).",
    ),
    draw_map: bool = typer.Option(
        True, "--map/--no-map", help="Draw the embedding map (embeds images not in the cache)."
    ),
    backbone: str | None = typer.Option(
        None,
        help="Backbone of the map (default: the selection's; needed for a method that "
        "reads no embeddings, e.g. random).",
    ),
    device: str = typer.Option(default("features.device"), help="Embedding device."),
    data: Path | None = typer.Option(
        None, help="The dataset, when it moved since `detreduce reduce` (default: as recorded)."
    ),
    format: FormatOpt = None,
    page: Path | None = typer.Option(
        None, help="Where to write the page (default: OUT/selection.html)."
    ),
) -> None:
    """Write OUT/selection.html: kept and dropped thumbnails per class, the embedding map,
    before/after histograms, duplicates and problems — one file, no server, no network.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from detreduce.report.html import write_selection_page
    from detreduce.settings import ReduceSettings

    # The same object write_selection_page takes, built (and checked) before any data is read.
    settings = ReduceSettings.build(
        show_per_class=per_class, show_thumb_size=thumb_size, show_max_points=max_points
    )
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = write_selection_page(
            out,
            settings=settings,
            data=data,
            format=format,
            backbone=backbone,
            device=device,
            draw_map=draw_map,
            page=page,
            progress=progress,
        )
    Console().print(
        f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB: {result.kept_shown} kept and "
        f"{result.dropped_shown} dropped thumbnails of {result.thumbnails} images, "
        f"{result.points} map points)",
        soft_wrap=True,
    )
    if result.map_note:
        Console().print(result.map_note, soft_wrap=True)
