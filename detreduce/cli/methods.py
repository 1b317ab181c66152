"""``detreduce methods``: the selection methods, one line each, with their parameters."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from detreduce.cli.app import app


def _fmt(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@app.command()
def methods(
    pattern: str | None = typer.Argument(
        None, help="Only methods whose name or alias matches, e.g. 'k*'.", show_default=False
    ),
) -> None:
    """List the selection methods with one-line descriptions and default parameters.

    Defaults come from detreduce/cfg/reducers.yaml (the same ones the Python API uses).
    """
    from detreduce.reducers import describe_methods

    infos = describe_methods(pattern)
    if not infos:
        typer.echo(f"no method matches {pattern!r}")
        return
    table = Table(show_lines=False)
    table.add_column("method", style="bold")
    table.add_column("description")
    table.add_column("parameters (defaults)")
    for info in infos:
        name = info.name + (f"\n[dim]({', '.join(info.aliases)})[/dim]" if info.aliases else "")
        params = "\n".join(f"{k}={_fmt(v)}" for k, v in info.params.items()) or "-"
        summary = info.summary + ("" if info.uses_features else " [dim](no features)[/dim]")
        table.add_row(name, summary, params)
    Console().print(table)
