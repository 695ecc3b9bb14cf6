"""``chatbot index``: pre-encode candidate responses into a response index."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from chatbot.artifact import load_artifact
from chatbot.index import save_index
from training.errors import BadRowCounter
from training.responses import FORMATS, read_responses

log = logging.getLogger(__name__)


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
    p.set_defaults(func=run)


def build_index(
    model_dir: Path,
    responses: Path,
    out: Path,
    fmt: str = "auto",
    batch_size: int = 512,
    limit: int | None = None,
    skip_bad_rows: bool = False,
) -> int:
    """Encodes the responses of ``responses`` with the model at ``model_dir`` into ``out``.

    Returns:
        The number of responses indexed.
    """
    artifact = load_artifact(model_dir)
    encoder = artifact.encoder()
    bad = BadRowCounter(skip=skip_bad_rows)
    shown, normalized = read_responses(responses, fmt, encoder.normalizer, bad)
    if limit is not None:
        shown, normalized = shown[:limit], normalized[:limit]
    if not shown:
        raise ValueError(f"{responses}: no responses found")
    if bad.count:
        log.warning("skipped %d malformed rows, e.g. %s", bad.count, bad.examples[0])
    log.info("encoding %d distinct responses with %s", len(shown), artifact.version)
    start = time.perf_counter()
    vectors = encoder.encode_responses(normalized, batch_size=batch_size, progress=True)
    took = time.perf_counter() - start
    # A hybrid model also needs the responses' TF-IDF rows to score over the repository.
    lexical = encoder.lexical.transform(normalized) if encoder.lexical is not None else None
    save_index(out, vectors, shown, artifact, source=str(responses), lexical=lexical)
    log.info(
        "index of %d responses written to %s (%.0f responses/s)", len(shown), out, len(shown) / took
    )
    return len(shown)


def run(args: argparse.Namespace) -> int:
    build_index(
        args.model,
        args.responses,
        args.out,
        args.format,
        args.batch_size,
        args.limit,
        args.skip_bad_rows,
    )
    return 0
