"""The ``chatbot`` command: one entry point, a subcommand per job.

Each module of this package adds one subcommand through ``register(subparsers)``: it parses
options, calls the domain functions of ``training`` or ``service`` and reports what they did.
:func:`main` is the one place that turns a user's problem (bad data, a damaged artifact or
index, missing WordNet data, a missing file, options that do not fit) into an ``error:`` line
and exit status 2, for every command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from chatbot.errors import ChatbotError

# Modules that add subcommands, in the order they appear in ``--help``.
_COMMAND_MODULES = (
    "chatbot_cli.data",
    "chatbot_cli.train",
    "chatbot_cli.eval",
    "chatbot_cli.calibrate",
    "chatbot_cli.lite",
    "chatbot_cli.index",
    "chatbot_cli.publish",
    "chatbot_cli.ubuntu",
    "chatbot_cli.ask",
    "chatbot_cli.serve",
    "chatbot_cli.feedback",
    "chatbot_cli.demo",
)
USAGE_ERROR = 2  # the exit status of every problem the user can fix, as argparse uses


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatbot",
        description="Retrieval-based chatbot: build data, train, evaluate, index and serve.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Alembic reports each migration check at INFO; a command's output is not the place.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ChatbotError as exc:
        return report_error(str(exc))
    except OSError as exc:  # a missing file, a folder where a file belongs, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        return report_error(f"{where}{exc.strerror or exc}")


def report_error(message: str) -> int:
    """Prints ``error: message`` (no traceback: the user's to fix) and returns exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
