"""``chatbot train``: train a dual encoder and write its model artifact."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from chatbot.config import LOSSES, ModelConfig
from chatbot.errors import UsageError
from chatbot.text import MODES
from training.presets import PRESETS
from training.train_config import TrainConfig

log = logging.getLogger(__name__)

# Flags that override a field of the preset's ModelConfig / TrainConfig.
_MODEL_FLAGS: dict[str, dict[str, Any]] = {
    "vocab_size": {"type": int},
    "min_count": {"type": int},
    "embedding_dim": {"type": int},
    "hidden_size": {"type": int},
    "bidirectional": {"action": argparse.BooleanOptionalAction},
    "shared_encoder": {"action": argparse.BooleanOptionalAction},
    "dropout": {"type": float},
    "max_context_tokens": {"type": int},
    "max_response_tokens": {"type": int},
    "loss": {"choices": LOSSES},
    "symmetric_loss": {"action": argparse.BooleanOptionalAction},
    "normalization": {"choices": MODES},
    "hierarchical": {"action": argparse.BooleanOptionalAction},
    "max_turns": {"type": int},
    "max_turn_tokens": {"type": int},
}
_TRAIN_FLAGS: dict[str, dict[str, Any]] = {
    "batch_size": {"type": int},
    "learning_rate": {"type": float},
    "max_steps": {"type": int},
    "eval_every": {"type": int},
    "eval_rows": {"type": int},
    "checkpoint_every": {"type": int},
    "patience": {"type": int},
    "bucketing": {"action": argparse.BooleanOptionalAction},
    "hard_negatives": {"action": argparse.BooleanOptionalAction},
    "negative_queue": {"type": int},
    "lexical_residual": {"type": float},
    "seed": {"type": int},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a dual encoder on a UDC-layout train.csv",
        description="Train a dual-encoder LSTM and write a model artifact directory. "
        "A preset gives every setting; flags override single ones.",
    )
    p.add_argument("--train", type=Path, required=True, help="train.csv (Context,Utterance,Label)")
    p.add_argument(
        "--extra-train",
        type=Path,
        action="append",
        default=[],
        metavar="FILE.csv",
        help="more training rows in the same layout, e.g. `chatbot feedback export` output "
        "(repeatable); with the softmax loss, down-voted replies become hard negatives of "
        "their contexts",
    )
    p.add_argument("--valid", type=Path, help="valid.csv (1 true + 9 distractors) for recall@1")
    p.add_argument("--out", type=Path, required=True, help="model artifact directory to write")
    p.add_argument("--workdir", type=Path, help="checkpoints and logs (default: OUT.work)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--preset", choices=sorted(PRESETS), default="udc", help="default: udc")
    p.add_argument("--name", help="artifact name, the start of its version (default: preset)")
    p.add_argument(
        "--embeddings",
        type=Path,
        help="initial word vectors: a text file of `word v1 ... vN` lines (GloVe/word2vec)",
    )
    p.add_argument(
        "--no-lite",
        dest="lite",
        action="store_false",
        help="do not convert the encoders for LiteRT after training (serving without "
        "TensorFlow; `chatbot lite --model OUT` does it later)",
    )
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi-worker"),
        default="default",
        help="tf.distribute strategy: one device, all local GPUs, or workers from TF_CONFIG",
    )
    for flags, group_title in ((_MODEL_FLAGS, "model"), (_TRAIN_FLAGS, "training")):
        group = p.add_argument_group(f"{group_title} settings (override the preset)")
        for field, kwargs in flags.items():
            group.add_argument("--" + field.replace("_", "-"), dest=field, default=None, **kwargs)
    p.set_defaults(func=run)


def configs_from_args(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """The preset's configs with the flags given on the command line applied."""
    model_config, train_config = PRESETS[args.preset]
    model_over = {k: getattr(args, k) for k in _MODEL_FLAGS if getattr(args, k) is not None}
    train_over = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    return (
        dataclasses.replace(model_config, **model_over),
        dataclasses.replace(train_config, **train_over),
    )


def run(args: argparse.Namespace) -> int:
    from training.train import is_chief, make_strategy, train  # lazy: pulls in TensorFlow

    model_config, train_config = configs_from_args(args)
    for path in args.extra_train:  # before TensorFlow starts and the vocabulary is built
        if not path.is_file():
            raise UsageError(f"{path}: No such file or directory (--extra-train)")
    result = train(
        args.train,
        args.valid,
        args.out,
        model_config,
        train_config,
        workdir=args.workdir,
        resume=args.resume,
        strategy=make_strategy(args.strategy),
        embeddings_file=args.embeddings,
        name=args.name or args.preset,
        extra_train=args.extra_train,
    )
    log.info(
        "trained %d steps; best validation R10@1 %.4f at step %d%s",
        result.steps,
        result.best_recall_at_1,
        result.best_step,
        " (stopped early)" if result.stopped_early else "",
    )
    if args.lite and is_chief():  # the one task that wrote the artifact
        from chatbot.lite_export import export_lite

        log.info("converting the encoders for LiteRT (serving without TensorFlow)")
        export_lite(args.out)
    return 0
