"""``detreduce report``: Markdown report and plots of a sweep folder."""

from __future__ import annotations

from pathlib import Path

import typer

from detreduce.cli.app import app


@app.command()
def report(
    run_dir: Path = typer.Argument(
        ..., help="A sweep folder (holds results.csv).", show_default=False
    ),
) -> None:
    """Write RUN_DIR/report.md with mAP and kWh vs fraction and the mAP-vs-kWh Pareto plot."""
    from rich.console import Console

    from detreduce.report import write_report

    path = write_report(run_dir)
    Console().print(f"Report: {path}", soft_wrap=True)
