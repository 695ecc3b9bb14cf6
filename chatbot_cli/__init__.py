"""The ``chatbot`` command: one entry point, a subcommand per job.

Each package contributes its own subcommands through a ``register(subparsers)`` function, so
this module is the only place that knows both the offline jobs and the service.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules that add subcommands, in the order they appear in ``--help``.
_COMMAND_MODULES = (
    "training.cli_data",
    "training.cli_train",
    "training.cli_eval",
    "training.cli_index",
    "training.cli_ubuntu",
    "service.cli",
    "chatbot_cli.demo",
)


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
    from training.errors import DataError

    try:
        return int(args.func(args) or 0)
    except DataError as exc:
        # Bad input is the user's to fix: one clear line, no traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
