"""``chatbot serve``: answers conversations over HTTP with a trained model and its index."""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from chatbot.lite import RUNTIMES
from chatbot.search import BACKENDS

_OPTIONS = {
    "model_dir": "--model",
    "index_dir": "--index",
    "batching": "--no-batching",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the chatbot over HTTP (chat page at /, API docs at /docs)",
        description="Serve the chatbot. Options left out fall back to CHATBOT_* variables.",
    )
    parser.add_argument("--model", type=Path, dest="model_dir", help="model artifact directory")
    parser.add_argument("--index", type=Path, dest="index_dir", help="response index directory")
    parser.add_argument(
        "--repository",
        type=Path,
        help="model repository (chatbot publish): serve its newest version and swap in new "
        "ones as they are published, instead of --model/--index",
    )
    parser.add_argument("--version", help="serve this version of the repository, not the newest")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="search backend (default: auto, the index's stored approximate index "
        "when it has one, else exact)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="where the encoders run (default: auto, LiteRT when the model has them "
        "converted by `chatbot lite` and there is no GPU, else TensorFlow)",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes, each with the model and its micro-batcher; they share the "
        "index's memory-mapped files (default: one per CPU core)",
    )
    parser.add_argument(
        "--no-batching",
        dest="batching",
        action="store_const",
        const=False,
        help="one model call per request instead of gathering concurrent requests",
    )
    parser.set_defaults(func=serve)


_GIVEN = (
    "model_dir",
    "index_dir",
    "repository",
    "version",
    "backend",
    "runtime",
    "host",
    "port",
    "batching",
    "workers",
)


def serve(args: argparse.Namespace) -> int:
    # Imported here so that `chatbot --help` and the offline jobs do not load the web stack.
    import uvicorn
    from pydantic import ValidationError

    from service.settings import Settings, usable_cores
    from service.worker_load import LOAD_DIR_ENV

    given: dict[str, Any] = {
        name: getattr(args, name) for name in _GIVEN if getattr(args, name) is not None
    }
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        # A user's mistake: one line per problem, no traceback.
        for error in exc.errors():
            if not error["loc"]:  # a rule between options: its message names them
                print(f"error: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
                continue
            name = str(error["loc"][0])
            option = _OPTIONS.get(name, "--" + name.replace("_", "-"))
            print(f"error: {option} / CHATBOT_{name.upper()}: {error['msg']}", file=sys.stderr)
        return 2
    # TensorFlow's C++ log lines below errors are noise here; so are the protobuf "errors" it
    # logs while reading the XLA cache (it tries text before binary), hence 3 by default.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if settings.workers == 1:
        # Only here: with workers, the supervising process builds no app, and holds none of
        # the libraries an app needs (each worker imports them itself).
        from service.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=_log_config(),
        )
        return 0
    # Each worker process builds its own app from CHATBOT_* variables (uvicorn imports the
    # factory anew in every worker), so the options given here travel as variables.
    for name, value in given.items():
        os.environ[f"CHATBOT_{name.upper()}"] = _env_value(value)
    # Each worker gets its share of the cores (TensorFlow, BLAS and faiss's OpenMP): more
    # threads than cores made every stage several times slower under load.
    share = str(max(1, usable_cores() // settings.workers))
    os.environ.setdefault("CHATBOT_MODEL_THREADS", share)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, share)
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chatbot-metrics-")
    # Each worker's requests in flight (service.worker_load): a worker above its share sends
    # a client to reconnect, so that requests, not only connections, are spread.
    os.environ[LOAD_DIR_ENV] = tempfile.mkdtemp(prefix="chatbot-load-")
    try:
        # uvicorn restarts a worker that dies; each one loads and warms up before serving.
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=_log_config(),
        )
    finally:
        shutil.rmtree(os.environ.pop(LOAD_DIR_ENV), ignore_errors=True)
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with the service's own lines (versions loaded, swapped, refused)
    through the same handler, in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("service", "chatbot"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _env_value(value: object) -> str:
    """A setting as pydantic-settings reads it back from the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
