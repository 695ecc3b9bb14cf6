"""``chatbot eval``: rank UDC evaluation rows with a trained model and/or baselines.

Example:
    chatbot eval --model runs/m1 --data test.csv --baselines tfidf,random --json eval.json
"""

from __future__ import annotations

import argparse
import itertools
import logging
from pathlib import Path

from chatbot.errors import UsageError
from training.baselines import BASELINES
from training.errors import BadRowCounter
from training.sources.udc_csv import read_eval_rows

log = logging.getLogger(__name__)


def _baseline_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baselines {','.join(unknown)}; choose from {','.join(BASELINES)}"
        )
    return names


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="recall@k and MRR of a model and baselines on 1-in-10 ranking rows",
        description="Rank each row's true response against its distractors and report "
        "recall@1/2/5, R2@1 and MRR per system. The evaluation file is a UDC v2 valid/test "
        "CSV or a UDC v1 test text file.",
    )
    p.add_argument("--model", type=Path, help="trained model directory (omit: baselines only)")
    p.add_argument("--data", type=Path, required=True, help="evaluation file")
    p.add_argument(
        "--repository",
        type=Path,
        metavar="INDEX_DIR",
        help="also rank each true response against every response of this index (the "
        "service's real job): recall@1/10/100, MRR, median rank, 1 in 100, echo and question "
        "rates of the top-1 reply",
    )
    p.add_argument(
        "--baselines",
        type=_baseline_list,
        default=[],
        help=f"comma-separated baselines to run as well: {','.join(BASELINES)}",
    )
    p.add_argument("--json", type=Path, required=True, help="where to write the results")
    p.add_argument("--plot", type=Path, help="where to write a recall@k bar chart (PNG)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="texts per encoder call")
    p.add_argument("--max-rows", type=_positive_int, help="evaluate only the first N rows")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument(
        "--skip-bad-rows", action="store_true", help="skip and count malformed rows, not fail"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs ``chatbot eval``; returns the exit code."""
    if args.model is None and not args.baselines:
        raise UsageError("nothing to evaluate: give --model and/or --baselines")
    scorer, repository, artifact = None, None, None
    if args.model is not None or args.repository is not None:
        from chatbot.artifact import load_artifact  # lazy: pulls in TensorFlow

        # Checked before the data is read.
        artifact = load_artifact(args.model) if args.model is not None else None
        scorer = artifact.scorer() if artifact is not None else None
        if args.repository is not None:
            from chatbot.index import load_index
            from chatbot.text import Normalizer
            from training.evaluate import Repository

            index = load_index(args.repository, artifact)
            normalization = artifact.config.normalization if artifact is not None else "none"
            repository = Repository(index, Normalizer(normalization))
    bad = BadRowCounter(skip=args.skip_bad_rows)
    rows = list(itertools.islice(read_eval_rows(args.data, bad), args.max_rows))
    if bad.count:
        log.warning("skipped %d malformed rows, e.g. %s", bad.count, "; ".join(bad.examples))
    if not rows:
        raise UsageError(f"{args.data}: no evaluation rows")
    log.info("evaluating on %d rows from %s", len(rows), args.data)
    from training.evaluate import run_evaluation  # matplotlib and the models: not at startup

    run_evaluation(
        rows,
        scorer,
        args.baselines,
        args.json,
        plot_path=args.plot,
        batch_size=args.batch_size,
        seed=args.seed,
        repository=repository,
        calibration=artifact.calibration if artifact is not None else None,
    )
    log.info("wrote %s", args.json)
    return 0
