"""``python -m detreduce`` runs the CLI."""

from detreduce.cli import entrypoint

entrypoint()
