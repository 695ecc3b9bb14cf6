"""The replies' sentence vectors encoded in a background process: the same vectors as the
index step would compute, handed over only for the same texts and flatbuffer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from chatbot.sentence import SENTENCE_FILES, SENTENCE_MODEL, SentenceEncoder, read_sentence_info
from tests.helpers import tiny_sentence_source
from training.reply_sentences import ReplyEncoding, texts_digest

REPLIES = ["Try sudo apt-get update first.", "hello there", "Try sudo apt-get update first."]


def _responses(folder: Path) -> Path:
    path = folder / "responses.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in REPLIES))
    return path


def test_texts_digest_tells_lists_apart() -> None:
    assert texts_digest(["a", "b"]) == texts_digest(["a", "b"])
    assert texts_digest(["a", "b"]) != texts_digest(["b", "a"])
    assert texts_digest(["a\nb"]) != texts_digest(["a", "b"])


@pytest.mark.slow
def test_background_vectors_are_the_encoders_own(tmp_path: Path) -> None:
    source = tiny_sentence_source(tmp_path / "sentence")
    job = ReplyEncoding(source, _responses(tmp_path), "tokenize", tmp_path / "work")
    job.start()
    try:
        converted = job.converted()
        assert converted == tmp_path / "work"
        assert all((converted / name).is_file() for name in SENTENCE_FILES)
        distinct = list(dict.fromkeys(REPLIES))  # the repository's distinct replies
        vectors = job.vectors(distinct, converted / SENTENCE_MODEL)
        encoder = SentenceEncoder(converted, read_sentence_info(converted / "sentence.json"))
        assert vectors is not None and vectors.shape == (2, encoder.dim)
        np.testing.assert_allclose(vectors, encoder.encode(distinct), atol=1e-6)
        # Other texts (another order, one more) or another flatbuffer: not handed over.
        assert job.vectors(distinct[::-1], converted / SENTENCE_MODEL) is None
        assert job.vectors([*distinct, "more"], converted / SENTENCE_MODEL) is None
        other = tmp_path / "other.tflite"
        other.write_bytes((converted / SENTENCE_MODEL).read_bytes() + b"\0")
        assert job.vectors(distinct, other) is None
    finally:
        job.close()
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_a_failed_background_job_hands_over_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-encoder"  # no config.json, weights or tokenizer
    job = ReplyEncoding(missing, _responses(tmp_path), "tokenize", tmp_path / "work")
    job.start()
    try:
        with caplog.at_level(logging.WARNING):
            assert job.converted() is None
            assert job.vectors(REPLIES[:2], tmp_path / "any.tflite") is None
    finally:
        job.close()
    assert "background sentence encoding failed (FileNotFoundError" in caplog.text
