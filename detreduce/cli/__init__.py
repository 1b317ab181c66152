"""Command-line entry point: thin wrappers over the Python API.

Every module in this package adds its command(s) to :data:`detreduce.cli.app.app`.
``main`` turns detreduce errors into one line on stderr and a non-zero exit; set
``DETREDUCE_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading

from detreduce.cli.app import app
from detreduce.errors import DetReduceError

EXIT_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so ``finally`` blocks remove temp outputs first."""


_signal_seen: list[int] = []  # typer turns any KeyboardInterrupt into exit code 130


def _raise_terminated(signum, frame) -> None:
    _signal_seen.append(signum)
    raise Terminated()


def _interrupted(terminated: bool) -> int:
    if terminated:
        print("detreduce: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    print("detreduce: interrupted", file=sys.stderr)
    return 130


def _handle_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` unless someone else already handles it."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def _load_commands() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in {"app", "common"}:
            importlib.import_module(f"{__name__}.{info.name}")


def _setup_logging() -> None:
    from rich.logging import RichHandler

    handler = RichHandler(show_time=False, show_path=False, markup=False, rich_tracebacks=False)
    logger = logging.getLogger("detreduce")
    logger.handlers[:] = [handler]
    logger.setLevel(os.environ.get("DETREDUCE_LOG", "INFO").upper())
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 user error, 130 Ctrl+C, 143 SIGTERM)."""
    _setup_logging()
    _load_commands()
    _handle_sigterm()
    try:
        app(args=argv, standalone_mode=True)  # typer prints usage errors itself (exit 2)
    except SystemExit as exc:
        if exc.code == 130:  # typer's exit for KeyboardInterrupt (Ctrl+C or our SIGTERM)
            return _interrupted(bool(_signal_seen))
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except DetReduceError as exc:
        print(f"detreduce: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        return _interrupted(isinstance(exc, Terminated))
    except Exception as exc:  # noqa: BLE001 - last line of defence against tracebacks
        if os.environ.get("DETREDUCE_DEBUG"):
            raise
        print(
            f"detreduce: internal error: {type(exc).__name__}: {exc} "
            "(rerun with DETREDUCE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


def entrypoint() -> None:
    sys.exit(main())
