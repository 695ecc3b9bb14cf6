"""Answers contexts with the best responses of a pre-encoded repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatbot.artifact import load_artifact
from chatbot.encoder import TextEncoder
from chatbot.index import ResponseIndex, load_index
from chatbot.search import SearchBackend, make_backend, top_k_rows


@dataclass(frozen=True)
class Hit:
    """One ranked response."""

    text: str
    score: float


class Ranker:
    """Encodes raw contexts and ranks repository responses (or given candidates) for them.

    Scores are the model's logits ``cᵀMr + b``; ``σ(score)`` is its probability that the
    response follows the context.

    Example:
        >>> ranker = Ranker.load("artifacts/default/model", "artifacts/default/index")
        >>> ranker.respond([["hi, how are you?"]], k=3)[0][0].text
        "i'm good, thanks!"
    """

    def __init__(
        self, encoder: TextEncoder, index: ResponseIndex, backend: SearchBackend, model_version: str
    ) -> None:
        self.encoder = encoder
        self.index = index
        self.backend = backend
        self.model_version = model_version

    @classmethod
    def load(cls, model_dir: str | Path, index_dir: str | Path, backend: str = "exact") -> Ranker:
        """Loads a model artifact and its index; both are checked (see ``chatbot.artifact``)."""
        artifact = load_artifact(model_dir)
        index = load_index(index_dir, artifact)
        return cls(
            artifact.encoder(), index, make_backend(backend, index.vectors), artifact.version
        )

    @property
    def max_context_tokens(self) -> int:
        return self.encoder.config.max_context_tokens

    def respond(self, contexts: Sequence[Sequence[str]], k: int) -> list[list[Hit]]:
        """Top-k repository responses for each raw context (a list of turns, oldest first)."""
        queries = self.encoder.encode_raw_contexts(contexts)
        scores, ids = self.backend.search(queries, k)
        bias = self.encoder.bias
        texts = self.index.texts
        return [
            [Hit(texts[i], float(s + bias)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[Hit]:
        """The caller's candidates, scored by the same model, top-k best first."""
        query = self.encoder.encode_raw_contexts([context])
        vectors = self.encoder.encode_raw_responses(candidates)
        scores, ids = top_k_rows(query @ vectors.T, k)
        bias = self.encoder.bias
        return [Hit(candidates[i], float(s + bias)) for s, i in zip(scores[0], ids[0], strict=True)]
