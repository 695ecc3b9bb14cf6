"""``chatbot serve``: answers conversations over HTTP with a trained model and its index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chatbot.search import BACKENDS

_OPTIONS = {"model_dir": "--model", "index_dir": "--index", "batching": "--no-batching"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the chatbot over HTTP (chat page at /, API docs at /docs)",
        description="Serve the chatbot. Options left out fall back to CHATBOT_* variables.",
    )
    parser.add_argument("--model", type=Path, dest="model_dir", help="model artifact directory")
    parser.add_argument("--index", type=Path, dest="index_dir", help="response index directory")
    parser.add_argument("--backend", choices=BACKENDS, help="search backend (default: exact)")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--no-batching",
        dest="batching",
        action="store_const",
        const=False,
        help="one model call per request instead of gathering concurrent requests",
    )
    parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    # Imported here so that `chatbot --help` and the offline jobs do not load the web stack.
    import uvicorn
    from pydantic import ValidationError

    from service.app import create_app
    from service.settings import Settings

    given: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("model_dir", "index_dir", "backend", "host", "port", "batching")
        if getattr(args, name) is not None
    }
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        # A user's mistake: one line per problem, no traceback.
        for error in exc.errors():
            name = str(error["loc"][0])
            option = _OPTIONS.get(name, "--" + name.replace("_", "-"))
            print(f"error: {option} / CHATBOT_{name.upper()}: {error['msg']}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
    return 0
