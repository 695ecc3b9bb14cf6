"""``chatbot index``: pre-encode candidate responses into a response index."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatbot.ann import ANN_MIN_RESPONSES
from training.responses import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index",
        help="encode candidate responses into a response index",
        description="Encode every distinct candidate response with a model's response encoder "
        "and write vectors (float32 and float16), texts and a manifest naming the model.",
    )
    p.add_argument("--model", type=Path, required=True, help="model artifact directory")
    p.add_argument(
        "--responses",
        type=Path,
        required=True,
        help="UDC-layout CSV (all distinct responses), plain text or JSONL (one response a line)",
    )
    p.add_argument("--out", type=Path, required=True, help="index directory to write")
    p.add_argument("--format", choices=FORMATS, default="auto", help="default: from the suffix")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--limit", type=int, help="keep only the first N distinct responses")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument(
        "--ann",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"also write an approximate neural index, which `chatbot serve` then searches "
        f"(default: from {ANN_MIN_RESPONSES:,} responses up)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs ``chatbot index``; returns the exit code."""
    from training.errors import BadRowCounter
    from training.indexing import build_index  # lazy: pulls in TensorFlow

    summary = build_index(
        args.model,
        args.responses,
        args.out,
        args.format,
        args.batch_size,
        args.limit,
        BadRowCounter(skip=args.skip_bad_rows),
        ann=args.ann,
    )
    print(f"indexed {summary.responses:,} responses into {args.out} in {summary.seconds:.1f} s")
    return 0
