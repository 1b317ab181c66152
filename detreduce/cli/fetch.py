"""``detreduce fetch``: download a known dataset by its recipe (explicit, never automatic)."""

from __future__ import annotations

from pathlib import Path

import typer

from detreduce.cli.app import app


@app.command()
def fetch(
    name: str = typer.Argument(..., help="Recipe name in datasets/ (bccd, aquarium, chess)."),
    dest: Path | None = typer.Option(
        None, help="Target folder (default: runs/.cache/datasets/NAME)."
    ),
) -> None:
    """Download and unpack a dataset named in datasets/*.yaml; prints where it is.

    A local copy ($DETREDUCE_DATASETS/NAME or the recipe's local paths) is used as is.
    """
    from detreduce.recipes import fetch_dataset, find_dataset

    local = None if dest else find_dataset(name)
    path = local or fetch_dataset(name, dest)
    typer.echo(str(path))
