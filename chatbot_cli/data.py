"""``chatbot data build``: raw dialogues -> UDC v2 layout ``train/valid/test.csv``.

Example:
    chatbot data build --source irc --out data/irc --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from itertools import islice
from pathlib import Path

from chatbot.errors import UsageError
from chatbot.text import MODES
from training.build import BuildOptions, SplitOptions, build_dataset
from training.errors import BadRowCounter, DataError
from training.shared_data import SHARED_DATA_ENV, shared_data_dir
from training.sources.registry import SOURCES

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``data build`` to the ``chatbot`` command."""
    data = subparsers.add_parser("data", help="build datasets", description="Build datasets.")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    source_help = "; ".join(f"{name}: {source.about}" for name, source in SOURCES.items())
    build = commands.add_parser(
        "build",
        help="raw dialogues -> UDC v2 layout train/valid/test.csv",
        description=(
            "Read raw two-party dialogues, split them by time, and write UDC v2 layout files: "
            "train.csv (Context,Utterance,Label) and valid.csv/test.csv (Context,Ground Truth "
            "Utterance,Distractor_0..8)."
        ),
        epilog=f"Inputs: {source_help}. Default inputs are under ${SHARED_DATA_ENV} "
        "(default ../shared/data).",
    )
    _add_input_options(build)
    _add_output_options(build)
    _add_split_options(build)
    build.set_defaults(func=run_build)


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input")
    group.add_argument(
        "--source",
        choices=sorted(SOURCES),
        default="chitchat",
        help="kind of raw dialogues (default: chitchat, embedded)",
    )
    group.add_argument(
        "--input",
        type=Path,
        metavar="PATH",
        help="file or folder to read (default: the source's file under the "
        "shared data folder; required for udc-raw)",
    )
    group.add_argument(
        "--max-dialogues",
        type=int,
        metavar="N",
        help="read only the first N dialogues (quick runs)",
    )
    group.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="skip and count malformed rows instead of stopping at the first",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for train.csv, valid.csv, test.csv",
    )
    group.add_argument(
        "--normalization",
        choices=MODES,
        help="text normalisation (default: tokenize for chitchat, else udc)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same seed gives identical files (default: 0)",
    )
    group.add_argument(
        "--examples",
        type=int,
        metavar="N",
        help="training pairs (default: one per training dialogue)",
    )
    group.add_argument(
        "--positives-only",
        action="store_true",
        help="only true pairs (label 1), for in-batch-negatives training",
    )
    group.add_argument(
        "--max-turns", type=int, default=20, metavar="N", help="most context turns (default: 20)"
    )


def _add_split_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "time split",
        "Dialogues are sorted by date; the latest fractions go to valid and test, unless "
        "cut-off dates are given. Undated dialogues go to train.",
    )
    group.add_argument(
        "--valid-fraction", type=float, default=0.05, metavar="F", help="default: 0.05"
    )
    group.add_argument(
        "--test-fraction", type=float, default=0.05, metavar="F", help="default: 0.05"
    )
    group.add_argument(
        "--valid-from",
        type=_date,
        metavar="YYYY-MM-DD",
        help="valid holds dialogues from this date (needs --test-from)",
    )
    group.add_argument(
        "--test-from", type=_date, metavar="YYYY-MM-DD", help="test holds dialogues from this date"
    )
    group.add_argument(
        "--exclude-from",
        type=_date,
        metavar="YYYY-MM-DD",
        help="leave training dialogues from this date out (needs --exclude-to)",
    )
    group.add_argument(
        "--exclude-to",
        type=_date,
        metavar="YYYY-MM-DD",
        help="... up to this date, exclusive; e.g. 2012-04-27 to 2012-12-01, the "
        "official UDC valid/test period",
    )


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def run_build(args: argparse.Namespace) -> int:
    """Runs ``chatbot data build``; returns the exit code."""
    source = SOURCES[args.source]
    path = args.input or source.path_in(shared_data_dir())
    if path is None and not source.embedded:
        raise UsageError(f"--source {args.source} needs --input PATH")
    if path is not None and not path.exists():
        raise UsageError(f"input not found: {path} (set --input or ${SHARED_DATA_ENV})")
    options = _options(args)
    bad = BadRowCounter(skip=args.skip_bad_rows)
    log.info("reading %s from %s", args.source, path or "the embedded corpus")
    dialogues = islice(source.read(path, bad), args.max_dialogues)
    try:
        summary = build_dataset(dialogues, args.out, options, bad)
    except DataError:
        raise  # bad input, reported by the entry point as it stands
    except ValueError as exc:  # too few dialogues for what was asked
        raise UsageError(str(exc)) from exc
    print(summary)
    for example in bad.examples:
        print(f"  skipped: {example}")
    return 0


def _options(args: argparse.Namespace) -> BuildOptions:
    """Build options from the command line; :class:`UsageError` when they do not fit."""
    try:
        split = SplitOptions(
            valid_fraction=args.valid_fraction,
            test_fraction=args.test_fraction,
            valid_from=args.valid_from,
            test_from=args.test_from,
            exclude_from=args.exclude_from,
            exclude_to=args.exclude_to,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    default_mode = "tokenize" if args.source == "chitchat" else "udc"
    return BuildOptions(
        normalization=args.normalization or default_mode,
        seed=args.seed,
        examples=args.examples,
        positives_only=args.positives_only,
        max_turns=args.max_turns,
        split=split,
    )
