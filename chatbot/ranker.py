"""Answers raw contexts with the best responses of a pre-encoded repository."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.artifact import load_artifact
from chatbot.encoder import TextEncoder
from chatbot.index import ResponseIndex, load_index
from chatbot.scoring import Scorer
from chatbot.search import SearchBackend, make_backend, padded_query_rows
from chatbot.text import Normalizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """One ranked response."""

    text: str
    score: float


class Ranker:
    """Normalises raw contexts and ranks repository responses (or given candidates) for them.

    Scores are the model's logits (:mod:`chatbot.scoring`); ``σ(score)`` is its probability
    that the response follows the context.

    Example::

        ranker = Ranker.load("artifacts/default/model", "artifacts/default/index")
        ranker.respond([["hi, how are you?"]], k=3)[0][0].text
    """

    def __init__(
        self,
        scorer: Scorer,
        normalizer: Normalizer,
        index: ResponseIndex,
        backend: SearchBackend,
        model_version: str,
    ) -> None:
        self.scorer = scorer
        self.normalizer = normalizer
        self.index = index
        self.backend = backend
        self.model_version = model_version

    @classmethod
    def load(cls, model_dir: str | Path, index_dir: str | Path, backend: str = "exact") -> Ranker:
        """Loads a model artifact and its index; both are checked (see ``chatbot.artifact``)."""
        artifact = load_artifact(model_dir)
        index = load_index(index_dir, artifact)
        return cls(
            artifact.scorer(),
            Normalizer(artifact.config.normalization),
            index,
            make_backend(backend, index.vectors),
            artifact.version,
        )

    def respond(self, contexts: Sequence[Sequence[str]], k: int) -> list[list[Hit]]:
        """Top-k repository responses for each raw context (a list of turns, oldest first)."""
        normalized = [self.normalizer.context(turns) for turns in contexts]
        last_turns = [self.normalizer.normalize(turns[-1]) for turns in contexts]
        ranked = self.scorer.rank(normalized, last_turns, self.index, self.backend, k)
        texts = self.index.texts
        return [[Hit(texts[i], score) for i, score in row] for row in ranked]

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[Hit]:
        """The caller's candidates, scored by the same model, top-k best first."""
        context_text = self.normalizer.context(context)
        responses = [self.normalizer.response(t) for t in candidates]
        scores = self.scorer.pair_scores([context_text], [responses])[0]  # (candidates,)
        best = np.argsort(-scores, kind="stable")[:k]
        return [Hit(candidates[i], float(scores[i])) for i in best]

    def warm_up(self, max_batch_size: int, k: int = 10) -> float:
        """Compiles every input shape a batch of up to ``max_batch_size`` contexts can meet
        (the encoder's padded shapes, the search's padded query rows), so that no request
        waits for an XLA compilation (about 0.5 s each). Returns the seconds it took."""
        start = time.perf_counter()
        encoder = self.scorer.encoder
        shapes = encoder.warm_up(max_batch_size) if isinstance(encoder, TextEncoder) else 0
        sizes = {padded_query_rows(n): n for n in range(1, max_batch_size + 1)}
        dim = self.index.dim
        for n in sizes.values():
            self.backend.search(np.zeros((n, dim), dtype=np.float32), k)
        self.respond([["hello"]], k)  # the whole path once, lexical part included
        took = time.perf_counter() - start
        log.info(
            "warm-up: %d encoder and %d search shapes (batches of up to %d) in %.1f s",
            shapes,
            len(sizes),
            max_batch_size,
            took,
        )
        return took
