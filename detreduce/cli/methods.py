"""``detreduce methods``: the method catalog, one line each, with kinds and parameters."""

from __future__ import annotations

import json

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
    kind: str | None = typer.Option(
        None, help="Only one kind: embedding, dataset or training.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
    as_markdown: bool = typer.Option(
        False, "--markdown", help="Print the catalog as a Markdown table (docs/methods.md)."
    ),
) -> None:
    """List the selection methods: kind, one-line description, default parameters.

    Kinds: embedding (a reducer on image or crop embeddings, under --balance), dataset (a
    baseline that reads file names or labels, e.g. ultralytics_fraction) and training (a
    policy that decides what the trainer sees each epoch). Defaults come from
    detreduce/cfg/reducers.yaml, the same ones the Python API uses. Set a parameter in
    the name wherever a method is taken: kcenter@metric=euclidean, infobatch@prune_ratio=0.75.
    """
    from detreduce.methods import list_methods

    specs = list_methods(pattern, kind=kind)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    if as_markdown:
        typer.echo(markdown(specs), nl=False)
        return
    if not specs:
        typer.echo(f"no method matches {pattern!r}")
        return
    table = Table(show_lines=False)
    table.add_column("method", style="bold")
    table.add_column("kind")
    table.add_column("description")
    table.add_column("parameters (defaults)")
    for spec in specs:
        name = spec.name + (f"\n[dim]({', '.join(spec.aliases)})[/dim]" if spec.aliases else "")
        params = "\n".join(f"{k}={_fmt(v)}" for k, v in spec.params.items()) or "-"
        traits = []  # what sets a reducer apart from the others (other kinds: by their kind)
        if spec.kind == "embedding":
            traits = [t for t, on in (("no features", not spec.uses_features),
                                      ("joint over strata", spec.joint),
                                      ("never balanced", not spec.balanced)) if on]  # fmt: skip
        summary = spec.summary + (f" [dim]({'; '.join(traits)})[/dim]" if traits else "")
        if spec.baseline:
            summary += f"\n[dim]baseline: {spec.baseline}[/dim]"
        table.add_row(name, spec.kind, summary, params)
    Console().print(table)


def markdown(specs: list) -> str:
    """The catalog as the Markdown page ``docs/methods.md`` (a test keeps it current)."""
    lines = [
        "# Selection methods",
        "",
        "Generated from the method catalog by `detreduce methods --markdown > docs/methods.md`",
        "(`tests/test_methods_catalog.py` fails when this page and the catalog disagree).",
        "Kinds: `embedding` (a reducer on embeddings, under `--balance`), `dataset` (a",
        "baseline that reads file names or labels), `training` (a policy inside the trainer).",
        "",
        "| method | kind | what it does | traits | parameters (defaults) | reference |",
        "|---|---|---|---|---|---|",
    ]
    for spec in specs:
        traits = [t for t, on in (("no features", not spec.uses_features),
                                  ("joint over strata", spec.joint),
                                  ("never balanced", not spec.balanced)) if on]  # fmt: skip
        if spec.baseline:
            traits.append(f"baseline: {spec.baseline}")
        name = f"`{spec.name}`" + (
            " (" + ", ".join(f"`{a}`" for a in spec.aliases) + ")" if spec.aliases else ""
        )
        params = ", ".join(f"`{k}={_fmt(v)}`" for k, v in spec.params.items()) or "–"
        cells = [name, spec.kind, spec.summary, "; ".join(traits) or "–", params, spec.reference]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
