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


def _print_version(value: bool) -> None:
    if value:
        from detreduce import __version__

        typer.echo(f"detreduce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Reduce an object-detection training set and measure what it costs and saves."""
