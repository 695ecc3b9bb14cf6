"""Answers contexts with the best responses of a pre-encoded repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.artifact import load_artifact
from chatbot.encoder import TextEncoder
from chatbot.index import ResponseIndex, load_index
from chatbot.search import SearchBackend, make_backend, top_k_rows

# A hybrid model (neural + lexical_weight × TF-IDF cosine) re-ranks, for each context, the union
# of the repository's top RERANK_DEPTH responses by the neural score and by the lexical one.
RERANK_DEPTH = 256
# A hybrid model rewards word overlap, and the closest overlap is the user's own message: a
# repository response this similar (TF-IDF cosine) to the last turn is a restatement, not an
# answer, and is never returned.
ECHO_COSINE = 0.7


@dataclass(frozen=True)
class Hit:
    """One ranked response."""

    text: str
    score: float


class Ranker:
    """Encodes raw contexts and ranks repository responses (or given candidates) for them.

    Scores are the model's logits ``cᵀMr + b``; ``σ(score)`` is its probability that the
    response follows the context. A hybrid model adds ``lexical_weight × cosine`` of the TF-IDF
    vectors (see :mod:`chatbot.lexical`) and ranks the union of the top ``RERANK_DEPTH``
    responses by each signal.

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
        normalized = [self.encoder.normalizer.context(turns) for turns in contexts]
        queries = self.encoder.encode_contexts(normalized)
        if self.encoder.lexical is not None:
            last_turns = [self.encoder.normalizer.normalize(turns[-1]) for turns in contexts]
            return self._respond_hybrid(normalized, last_turns, queries, k)
        scores, ids = self.backend.search(queries, k)
        bias = self.encoder.bias
        texts = self.index.texts
        return [
            [Hit(texts[i], float(s + bias)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def _respond_hybrid(
        self, normalized: Sequence[str], last_turns: Sequence[str], queries: np.ndarray, k: int
    ) -> list[list[Hit]]:
        lexical, index_lexical = self.encoder.lexical, self.index.lexical
        if lexical is None or index_lexical is None:
            raise ValueError("a hybrid model needs an index with lexical (TF-IDF) rows")
        depth = min(len(self.index), max(k, RERANK_DEPTH))
        _, neural_ids = self.backend.search(queries, depth)
        overlap = (lexical.transform(normalized) @ index_lexical.T).tocsr()
        echo = (lexical.transform(last_turns) @ index_lexical.T).tocsr()
        weight, bias, texts = self.encoder.lexical_weight, self.encoder.bias, self.index.texts
        out = []
        for i, query in enumerate(queries):
            row = overlap.getrow(i)
            lexical_ids = row.indices[np.argsort(-row.data, kind="stable")[:depth]]
            ids = np.union1d(neural_ids[i][neural_ids[i] >= 0], lexical_ids).astype(np.int64)
            echo_row = echo.getrow(i)
            echoes = echo_row.indices[echo_row.data >= ECHO_COSINE]
            ids = ids[~np.isin(ids, echoes)]
            scores = self.index.vectors[ids] @ query + weight * row[:, ids].toarray()[0]
            best = np.argsort(-scores, kind="stable")[:k]
            out.append([Hit(texts[ids[j]], float(scores[j] + bias)) for j in best])
        return out

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[Hit]:
        """The caller's candidates, scored by the same model, top-k best first."""
        normalizer = self.encoder.normalizer
        context_text = normalizer.context(context)
        response_texts = [normalizer.response(t) for t in candidates]
        query = self.encoder.encode_contexts([context_text])
        vectors = self.encoder.encode_responses(response_texts)
        lexical = self.encoder.lexical_pair_scores(
            [context_text] * len(response_texts), response_texts
        )
        scores, ids = top_k_rows(query @ vectors.T + lexical[None, :], k)
        bias = self.encoder.bias
        return [Hit(candidates[i], float(s + bias)) for s, i in zip(scores[0], ids[0], strict=True)]
