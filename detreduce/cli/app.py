"""The typer application every command module adds itself to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="detreduce",
    help=(
        "Reduce an object-detection training set before YOLO training, and measure "
        "what the reduction costs in mAP and saves in time and kWh."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Reduce an object-detection training set and measure what it costs and saves."""
