"""Pre-encodes a file of candidate responses into a response index for a model."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatbot.artifact import load_artifact
from chatbot.index import save_index
from training.errors import BadRowCounter, DataError
from training.responses import read_responses

if TYPE_CHECKING:
    from training.sentence_job import SentenceVectorJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSummary:
    """What :func:`build_index` wrote."""

    responses: int
    skipped_rows: int
    seconds: float


def build_index(
    model_dir: Path,
    responses: Path,
    out: Path,
    fmt: str = "auto",
    batch_size: int = 512,
    limit: int | None = None,
    bad: BadRowCounter | None = None,
    ann: bool | None = None,
    sentence_job: SentenceVectorJob | None = None,
) -> IndexSummary:
    """Encodes the distinct responses of ``responses`` with the model at ``model_dir`` into
    an index at ``out`` (written atomically).

    Args:
        model_dir: the model artifact.
        responses: a UDC-layout CSV, plain text or JSONL file (see
            :func:`training.responses.read_responses`).
        out: the index folder.
        fmt: the file format, or ``auto`` (from the suffix).
        batch_size: responses per encoder call.
        limit: keep only the first ``limit`` distinct responses.
        bad: skips and counts malformed rows (default: the first one raises).
        ann: also write an approximate neural index (default: for large repositories).
        sentence_job: the replies' sentence vectors, begun in the background
            (:mod:`training.sentence_job`); set aside unless it encoded these replies with
            the artifact's own sentence encoder.

    Raises:
        DataError: the file is malformed, or holds no response.
    """
    artifact = load_artifact(model_dir)
    encoder = artifact.encoder()
    bad = bad or BadRowCounter()
    found = read_responses(responses, fmt, encoder.normalizer, bad).head(limit)
    if not found:
        raise DataError(responses, None, "no responses found")
    if bad.count:
        log.warning("skipped %d malformed rows, e.g. %s", bad.count, bad.examples[0])
    if found.display == "normalized":
        log.warning(
            "%s holds normalised text only: users will see it stemmed and lower-cased; "
            "index raw text (plain text or JSONL) to show replies as people wrote them",
            responses,
        )
    log.info("encoding %d distinct responses with %s", len(found), artifact.version)
    start = time.perf_counter()
    vectors = encoder.encode_responses(found.normalized, batch_size=batch_size, progress=True)
    took = time.perf_counter() - start
    # A hybrid model also needs the responses' TF-IDF rows to score over the repository.
    lexical = None
    if artifact.lexical is not None:
        lexical = artifact.lexical.transform(found.normalized)
    # The semantic part reads the replies as they are shown (raw text, when known).
    sentence = None
    if artifact.sentence_encoder is not None:
        log.info(
            "sentence vectors of %d responses (%s)", len(found), artifact.sentence_encoder.source
        )
        if sentence_job is not None:
            sentence = sentence_job.finish(found.shown, artifact.sentence_encoder)
        if sentence is None:
            sentence = artifact.sentence_encoder.encode(found.shown, progress=True)
    save_index(
        out,
        vectors,
        found.shown,
        artifact,
        source=str(responses),
        lexical=lexical,
        normalized=found.normalized,
        display=found.display,
        ann=ann,
        progress=True,
        sentence=sentence,
    )
    log.info(
        "index of %d responses written to %s (%.0f responses/s)", len(found), out, len(found) / took
    )
    return IndexSummary(len(found), bad.count, time.perf_counter() - start)
