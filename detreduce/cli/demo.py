"""``detreduce demo``: the main command — a small real sweep and its report."""

from __future__ import annotations

from pathlib import Path

import typer

from detreduce.cli.app import app
from detreduce.config import default


@app.command()
def demo(
    data: Path | None = typer.Option(
        None, help="Dataset to run on (default: BCCD blood cells, found or downloaded)."
    ),
    out: Path | None = typer.Option(None, help="Sweep folder (default: runs/demo)."),
    model: str = typer.Option(
        default("sweep.demo_model"),
        help="Detector (default: yolo-mobilenetv2, ImageNet backbone, offline; `detreduce models`).",
    ),
    epochs: int = typer.Option(default("sweep.demo_epochs"), help="Epochs of every run."),
    imgsz: int = typer.Option(default("sweep.demo_imgsz"), help="Image size (pixels)."),
    device: str | None = typer.Option(None, help="auto, cpu, 0 (default: train.device)."),
    download: bool = typer.Option(
        True, help="Download BCCD (logged) when it is not found locally."
    ),
    overwrite: bool = typer.Option(False, help="Discard a previous demo in --out."),
) -> None:
    """Compare random, a clustering (clc) and a coverage (kcenter) reduction on BCCD.

    Half of the train images, the full-data baseline, one seed, a few epochs from an
    ImageNet-pretrained backbone: under 10 minutes on 2 CPU cores. Prints the one-line
    answer and where the report is. Rerunning resumes the sweep.
    """
    from rich.console import Console

    from detreduce.cli.sweep import sweep_progress
    from detreduce.demo import run_demo

    progress, on_event = sweep_progress()
    with progress:
        result = run_demo(
            data,
            out,
            train={"model": model, "epochs": epochs, "imgsz": imgsz, "device": device},
            download=download,
            overwrite=overwrite,
            on_event=on_event,
        )
    console = Console()
    if result.synthetic:
        console.print(
            "[yellow]Ran on a synthetic dataset (BCCD not found): see the warning above.[/]"
        )
    console.print(f"Demo finished in {result.seconds:.0f} s on {result.data}", soft_wrap=True)
    from detreduce.report.tables import load_sweep, one_line_answer, summary_table

    answer = one_line_answer(summary_table(load_sweep(result.out)[0]))
    if answer:
        console.print(f"[bold]{answer}[/]", soft_wrap=True)
    console.print(f"Report: {result.report}", soft_wrap=True)
