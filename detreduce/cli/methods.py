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
    import fnmatch

    from detreduce.reducers import describe_methods
    from detreduce.reducers.catalog import MethodInfo

    infos = describe_methods(pattern)
    # Not a reducer (it reads file names, not embeddings), but users pick it the same way.
    baseline = MethodInfo(
        name="ultralytics_fraction",
        aliases=("ultralytics-fraction",),
        summary="what Ultralytics' fraction= does: the first N files of the sorted list",
        uses_features=False,
        params={},
    )
    if pattern is None or any(
        fnmatch.fnmatch(n, pattern) for n in (baseline.name, *baseline.aliases)
    ):
        infos = [*infos, baseline]
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
