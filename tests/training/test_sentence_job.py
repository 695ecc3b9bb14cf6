"""The replies' sentence vectors encoded in the background: the same vectors as the index
step's own, split between the two processes; paused while asked; set aside when it failed
or when it encoded other texts or with another file."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.text import Normalizer
from tests.helpers import WORDS, tiny_artifact, tiny_sentence_source
from training.responses import read_responses
from training.sentence import export_sentence_encoder
from training.sentence_job import SentenceVectorJob

NORMALIZATION = "tokenize"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_source(tmp_path_factory.mktemp("job") / "encoder")


@pytest.fixture(scope="module")
def responses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 replies of 1 to 40 words, a few of them twice (read once)."""
    rng = random.Random(0)
    distinct: dict[str, None] = {}
    while len(distinct) < 600:
        distinct[" ".join(rng.choices(WORDS, k=rng.randint(1, 40)))] = None
    texts = list(distinct)
    path = tmp_path_factory.mktemp("job_data") / "responses.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts + texts[:20]))
    return path


def _shown(path: Path) -> list[str]:
    return read_responses(path, "auto", Normalizer(NORMALIZATION)).shown


def _model(root: Path, source: Path, job: SentenceVectorJob | None = None) -> Path:
    model = tiny_artifact(root / "model")
    export_sentence_encoder(model, source, converted=job.converted() if job else None)
    return model


def test_the_job_gives_the_vectors_the_index_step_would(source, responses, tmp_path) -> None:
    job = SentenceVectorJob.start(source, tmp_path / "work")
    try:
        job.encode(responses, NORMALIZATION)
        encoder = load_artifact(_model(tmp_path, source, job)).sentence_encoder
        texts = _shown(responses)
        assert len(texts) == 600
        got = job.finish(texts, encoder)
    finally:
        job.close()
    assert got is not None
    np.testing.assert_allclose(got, encoder.encode(texts, threads=1), atol=1e-6)
    assert 0 <= job.background_done <= len(texts)


def test_a_paused_job_takes_no_work_and_the_index_step_does_it(source, responses, tmp_path) -> None:
    job = SentenceVectorJob.start(source, tmp_path / "work")
    try:
        encoder = load_artifact(_model(tmp_path, source, job)).sentence_encoder
        texts = _shown(responses)
        with job.paused():
            job.encode(responses, NORMALIZATION)
            time.sleep(2.0)  # a running job encodes these 600 tiny replies in well under 1 s
            assert job.background_done == 0
        got = job.finish(texts, encoder)
    finally:
        job.close()
    assert got is not None
    np.testing.assert_allclose(got, encoder.encode(texts, threads=1), atol=1e-6)


def test_a_job_for_other_texts_or_another_encoder_is_set_aside(source, responses, tmp_path) -> None:
    job = SentenceVectorJob.start(source, tmp_path / "work")
    try:
        job.encode(responses, NORMALIZATION)
        texts = _shown(responses)
        other_source = tiny_sentence_source(tmp_path / "other", seed=1)
        other = load_artifact(_model(tmp_path / "b", other_source)).sentence_encoder
        assert job.finish(texts, other) is None  # another file
        own = load_artifact(_model(tmp_path / "a", source, job)).sentence_encoder
        assert job.finish(texts[:-1], own) is None  # other texts
    finally:
        job.close()


def test_a_job_that_fails_is_set_aside(source, responses, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((source / "config.json").read_text())
    job = SentenceVectorJob.start(broken, tmp_path / "work")
    try:
        job.encode(responses, NORMALIZATION)
        assert job.converted() is None
        encoder = load_artifact(_model(tmp_path, source)).sentence_encoder
        assert job.finish(_shown(responses), encoder) is None
    finally:
        job.close()
