"""``chatbot demo``: the main job on the embedded default, then the chat widget.

The first run builds everything from the ``chitchat-dataset`` package (installed from PyPI,
so no files of ours are needed): UDC-layout data, a model trained with the ``chitchat``
preset with its hybrid TF-IDF weight tuned on the validation rows (``training.hybrid``), its
evaluation against TF-IDF and random, and a response index of the training conversations'
turns. Each step is skipped when its output exists, so later runs serve at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

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
    p.set_defaults(func=run)


def build_default(
    out: Path, preset: str, examples: int, max_steps: int | None, rebuild: bool
) -> tuple[Path, Path]:
    """Runs each missing step of the default pipeline; returns (model dir, index dir)."""
    from training.build import BuildOptions, build_dataset, split_dialogues
    from training.cli_index import build_index
    from training.evaluate import run_evaluation
    from training.hybrid import add_lexical
    from training.presets import PRESETS
    from training.sources.chitchat import read_chitchat
    from training.sources.udc_csv import read_eval_rows
    from training.train import train

    data, model, index = out / "data", out / "model", out / "index"
    model_config, train_config = PRESETS[preset]
    if max_steps is not None:
        train_config = dataclasses.replace(train_config, max_steps=max_steps)

    if rebuild or not (data / "responses.jsonl").exists():
        log.info("step 1/4: building UDC-layout data from the chitchat-dataset package")
        dialogues = list(read_chitchat())
        options = BuildOptions(
            normalization=model_config.normalization,
            examples=examples,
            positives_only=model_config.loss == "softmax",
        )
        log.info("%s", build_dataset(dialogues, data, options))
        # The repository: every turn of the training conversations, as people wrote it.
        splits, _ = split_dialogues(dialogues, options.split)
        turns = dict.fromkeys(" ".join(t) for d in splits["train"] for t in d.turns[1:])
        with (data / "responses.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in turns)
    if rebuild or not (model / "manifest.json").exists():
        log.info("step 2/4: training the %s preset, then tuning its TF-IDF hybrid weight", preset)
        train(
            data / "train.csv", data / "valid.csv", model, model_config, train_config, name=preset
        )
        add_lexical(model, data / "train.csv", {"valid": data / "valid.csv"}, name=preset)
    if rebuild or not (out / "eval.json").exists():
        log.info("step 3/4: evaluating on test.csv against TF-IDF and random")
        from chatbot.artifact import load_encoder

        run_evaluation(
            list(read_eval_rows(data / "test.csv")),
            load_encoder(model),
            ["tfidf", "random"],
            out / "eval.json",
            out / "eval.png",
        )
    if rebuild or not (index / "manifest.json").exists():
        log.info("step 4/4: encoding the response repository")
        build_index(model, data / "responses.jsonl", index)
    return model, index


def run(args: argparse.Namespace) -> int:
    model, index = build_default(args.out, args.preset, args.examples, args.max_steps, args.rebuild)
    if args.build_only:
        log.info("built %s and %s", model, index)
        return 0
    import uvicorn

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(model_dir=model, index_dir=index, host=args.host, port=args.port)
    log.info("serving the chat widget at http://%s:%d", args.host, args.port)
    uvicorn.run(create_app(settings), host=args.host, port=args.port)
    return 0
