"""``chatbot publish``: add a model and its index to a model repository as a new version."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish",
        help="publish a model and its index as the next version of a model repository",
        description="Check that the index was encoded by the model and that every file is "
        "whole, then copy both into REPO/<version>/ atomically (a version is complete or "
        "absent). Services started with `chatbot serve --repository REPO` swap it in.",
    )
    p.add_argument("--model", type=Path, required=True, help="model artifact directory")
    p.add_argument("--index", type=Path, required=True, help="its response index directory")
    p.add_argument("--repository", type=Path, required=True, help="the model repository")
    p.add_argument("--note", default="", help="why this version exists (kept in bundle.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chatbot.bundles import publish

    bundle = publish(args.repository, args.model, args.index, note=args.note)
    # The version alone on stdout, so that scripts can take it: v=$(chatbot publish ...)
    print(bundle.version)
    return 0
