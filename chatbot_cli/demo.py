"""``chatbot demo``: the main job on the embedded default, then the chat widget.

The first run builds everything from the ``chitchat-dataset`` package (installed from PyPI,
so no files of ours are needed) with the pipeline's chitchat recipe
(:func:`training.recipes.chitchat_recipe`): UDC-layout data, a model trained with the
``chitchat`` preset with its hybrid TF-IDF weight tuned on the validation rows, its evaluation
against TF-IDF and random, and a response index of the training conversations' turns. Each
step is skipped when its output exists, so later runs serve at once.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from chatbot_cli.ubuntu import add_sentence_option, log_evaluation

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="build the default chitchat model (first run only) and serve the chat widget",
        description="Build data, train, evaluate and index the embedded default (cached in "
        "OUT), then serve the chat widget.",
    )
    p.add_argument("--out", type=Path, default=Path("artifacts/default"), help="cache folder")
    p.add_argument("--preset", default="chitchat", help="training preset (default: chitchat)")
    p.add_argument("--max-steps", type=int, help="override the preset's training steps")
    p.add_argument("--examples", type=int, default=60_000, help="training pairs to build")
    p.add_argument("--build-only", action="store_true", help="build and evaluate; do not serve")
    p.add_argument("--rebuild", action="store_true", help="rebuild every step")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    add_sentence_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.pipeline import STEPS, Paths, PipelineOptions, run_pipeline
    from training.recipes import chitchat_recipe
    from training.sentence import resolve_source

    options = PipelineOptions(
        out=args.out,
        max_steps=args.max_steps,
        sentence=resolve_source(args.sentence_encoder),
        reuse=set() if args.rebuild else set(STEPS),
    )
    report = run_pipeline(chitchat_recipe(args.examples, args.preset), options)
    log_evaluation(report)
    paths = Paths(args.out)
    if args.build_only:
        log.info("built %s and %s", paths.model, paths.index)
        return 0
    import uvicorn

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(
        model_dir=paths.model, index_dir=paths.index, host=args.host, port=args.port
    )
    log.info("serving the chat widget at http://%s:%d", args.host, args.port)
    uvicorn.run(create_app(settings), host=args.host, port=args.port)
    return 0
