"""The score of a (context, response) pair, in one place, for evaluation and for serving.

A dual encoder scores ``cᵀMr + b``. A hybrid model adds a lexical signal, and a model with a
sentence encoder (:mod:`chatbot.sentence`) a semantic one::

    score = cᵀMr + b + lexical_weight × cosine(tfidf(c), tfidf(r))
                     + semantic_weight × cosine(sentence(c), sentence(r))

:func:`hybrid_score` is the only place that formula is written. A :class:`Scorer` holds the
parts (the neural encoder, the fitted TF-IDF model, the sentence encoder, their weights) and
applies it two ways:

* :meth:`Scorer.pair_scores` scores given candidates (``chatbot eval``, a request's own
  ``candidates``); :meth:`Scorer.parts` returns the neural and lexical parts apart, which is
  what the weight tuning fits (on the neural part alone, whatever weight a model already has);
* :meth:`Scorer.rank` searches a pre-encoded repository (serving): the union of the best
  :data:`RERANK_DEPTH` responses by the neural part and :data:`LEXICAL_DEPTH` by the
  lexical one is re-scored exactly. The neural part's best come from the search backend; the
  lexical part's from the index's postings (:mod:`chatbot.postings`), which read only the
  heaviest postings of common words; the semantic part's :data:`SEMANTIC_DEPTH` best, when
  it has a weight, from the index's sentence vectors.
  Whenever the model has a TF-IDF model (hybrid or not) and the index its rows, it never
  returns a response whose cosine with the user's last turn reaches the model's
  ``echo_cosine`` (a restatement); with the semantic part, nor one whose sentence cosine
  with the last turn reaches ``semantic_echo_cosine`` (a restatement in other words).

Texts here are normalised already (:class:`chatbot.text.Normalizer`); the sentence encoder
reads the raw turns when the caller has them (``raw_turns``), else the normalised ones.

Example:
    >>> hybrid_score(np.array([1.0]), np.array([0.5]), weight=4.0, bias=-1.0).tolist()
    [2.0]
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from chatbot.config import ECHO_COSINE, SEMANTIC_ECHO_OFF
from chatbot.lexical import TfidfModel, rowwise_dot
from chatbot.postings_kernel import owned_cosines
from chatbot.sentence import SentenceEncoder, sentence_text
from chatbot.text import split_turns
from chatbot.timing import StageTimes

if TYPE_CHECKING:
    from chatbot.index import ResponseIndex
    from chatbot.postings import Postings
    from chatbot.search import SearchBackend

# A hybrid model re-ranks, for each context, the union of the repository's top RERANK_DEPTH
# responses by the neural score and its top LEXICAL_DEPTH by the lexical one. The lexical
# part goes deeper: a long context's best TF-IDF matches are many near ties, and at 1M
# responses the exact hybrid top-10 held more of them below the 256th than neural ones
# (recall@10 of exact 0.980 with 256 of each, 0.990 with 384 lexical, which cost about 0.5 ms
# a context; 384 of each, 0.992 for 2 ms more; 0.987 served, with the cap on whole reads of
# chatbot.postings: docs/performance.md).
RERANK_DEPTH = 256
LEXICAL_DEPTH = 384
# The semantic part's own candidates, from the index's sentence search (exact, or its IVF):
# without them the served ranking kept 0.960 of the exact top 10 on validation rows, with 32
# 0.983, with 128 0.993 (docs/performance.md, "The semantic part's cost").
SEMANTIC_DEPTH = 128
# The stages Scorer.rank times (StageTimes names), in the order a request meets them: what
# /metrics and the benchmarks report.
RANK_STAGES = (
    "encode",
    "neural search",
    "lexical search",
    "sentence encode",
    "semantic search",
    "fusion and filters",
)
# Rows scored at once by Scorer.parts: bounds its (rows, candidates, dim) gather.
_GATHER_ROWS = 4096
# A hybrid model rewards word overlap, and the closest overlap is the user's own message: a
# repository response this similar (TF-IDF cosine) to the last turn is a restatement, not an
# answer, and is never returned by :meth:`Scorer.rank` (each model's value: ModelConfig).


class PairEncoder(Protocol):
    """The neural part: maps normalised texts to vectors whose dot product is ``cᵀMr``."""

    @property
    def bias(self) -> float:
        """The scorer's ``b``."""
        ...

    def encode_contexts(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 context vectors, already multiplied by M."""
        ...

    def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 response vectors."""
        ...


def hybrid_score(
    neural: np.ndarray,
    cosine: np.ndarray,
    weight: float,
    bias: float = 0.0,
    semantic: np.ndarray | None = None,
    semantic_weight: float = 0.0,
) -> np.ndarray:
    """``neural + bias + weight × cosine + semantic_weight × semantic``, elementwise: the
    model's logit for each pair.

    Args:
        neural: ``cᵀMr`` scores.
        cosine: TF-IDF cosines of the same pairs (zeros for a plain dual encoder).
        weight: the model's ``lexical_weight``.
        bias: the model's ``b``.
        semantic: sentence-encoder cosines of the same pairs (``None``: no semantic part).
        semantic_weight: the model's ``semantic_weight``.
    """
    score = neural + np.float32(bias) + np.float32(weight) * cosine
    if semantic is not None and semantic_weight:
        score = score + np.float32(semantic_weight) * semantic
    return score


def sentence_of_normalized(text: str) -> str:
    """What the sentence encoder reads of a normalised text when the raw one is not known:
    its turns without markers (the model still reads the stemmed words).

    Example:
        >>> sentence_of_normalized("how do i ? __eou__ __eot__ tri this __eou__")
        'how do i ? tri this'
    """
    return " ".join(split_turns(text))


def context_sentences(
    sentence: SentenceEncoder, turns: Sequence[Sequence[str]], batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Each context's sentence vector as the semantic part scores it (its last turns, through
    the context adapter) and its last turn's (what the semantic echo rule compares a reply
    with): ``(contexts, last turns)``. One call for both, each distinct text once: a one-turn
    context is its last turn."""
    texts = [sentence_text(t, sentence.context_turns) for t in turns]
    lasts = [sentence_text(t, 1) for t in turns]
    vectors, where = encode_unique([*texts, *lasts], sentence.encode_queries, batch_size)
    return sentence.adapt(vectors[where[: len(texts)]]), vectors[where[len(texts) :]]


@dataclass(frozen=True)
class ScoreParts:
    """The parts of the scores of each row's candidates, kept apart.

    Attributes:
        neural: ``(rows, candidates)`` float32 ``cᵀMr``.
        cosine: ``(rows, candidates)`` float32 TF-IDF cosines (zeros without a lexical model).
        bias: the model's ``b``.
        semantic: ``(rows, candidates)`` float32 sentence-encoder cosines, or ``None``
            without a sentence encoder.
    """

    neural: np.ndarray
    cosine: np.ndarray
    bias: float = 0.0
    semantic: np.ndarray | None = None

    def combined(self, weight: float, semantic_weight: float = 0.0) -> np.ndarray:
        """The full scores with the lexical part weighted by ``weight`` and the semantic one
        by ``semantic_weight``.

        Example:
            >>> ScoreParts(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])).combined(2.0).tolist()
            [[1.0, 2.0]]
        """
        return hybrid_score(
            self.neural, self.cosine, weight, self.bias, self.semantic, semantic_weight
        )


def encode_unique(
    texts: Sequence[str],
    encode: Callable[[Sequence[str]], np.ndarray],
    batch_size: int = 256,
    desc: str = "texts",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Encodes each distinct text once, in batches.

    Returns:
        ``(vectors, index)``: vectors of the distinct texts, and for each input text the row of
        ``vectors`` that holds it, so ``vectors[index]`` lines up with ``texts``.

    Example:
        >>> vectors, index = encode_unique(["a", "bb", "a"], lambda b: [[len(t)] for t in b])
        >>> vectors.tolist(), index.tolist()
        ([[1.0], [2.0]], [0, 1, 0])
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    positions: dict[str, int] = {}
    index = np.fromiter(
        (positions.setdefault(t, len(positions)) for t in texts), dtype=np.int64, count=len(texts)
    )
    unique = list(positions)
    chunks = []
    with tqdm(total=len(unique), desc=desc, unit="text", disable=not progress) as bar:
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            vectors = np.asarray(encode(batch), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(batch):
                raise ValueError(
                    f"{desc}: encoder returned shape {vectors.shape} for {len(batch)} texts"
                )
            chunks.append(vectors)
            bar.update(len(batch))
    return np.concatenate(chunks), index


def candidate_count(candidates: Sequence[Sequence[str]]) -> int:
    """The number of candidates per row, which must be the same for every row.

    Example:
        >>> candidate_count([["a", "b"], ["c", "d"]])
        2
    """
    counts = {len(row) for row in candidates}
    if len(counts) != 1:
        raise ValueError(f"rows must share one candidate count, found {sorted(counts) or 'none'}")
    return counts.pop()


class Scorer:
    """A model's score: the neural part, the lexical part and their weight, as one object.

    Args:
        encoder: the neural part (a :class:`chatbot.encoder.TextEncoder` or any
            :class:`PairEncoder`).
        lexical: the fitted TF-IDF model, or ``None`` for a plain dual encoder.
        lexical_weight: the weight of the TF-IDF cosine (0 for a plain dual encoder).
        echo_cosine: :meth:`rank` never returns a response this close to the last turn.
        semantic_echo_cosine: nor one this close to it by the sentence cosine (with the
            semantic part; above 1: off).
        rerank_depth: responses taken from the neural part before :meth:`rank` re-scores
            them; ``lexical_depth``: from the lexical part; ``semantic_depth``: from the
            semantic part.
        sentence: the semantic part's sentence encoder, or ``None``.
        semantic_weight: the weight of its cosine (0: scored by :meth:`parts` for tuning,
            left out of the score). Above 0 it needs the TF-IDF model too: :meth:`rank` fuses
            the parts' candidates with the lexical search's.
    """

    def __init__(
        self,
        encoder: PairEncoder,
        lexical: TfidfModel | None = None,
        lexical_weight: float = 0.0,
        echo_cosine: float = ECHO_COSINE,
        rerank_depth: int = RERANK_DEPTH,
        lexical_depth: int = LEXICAL_DEPTH,
        sentence: SentenceEncoder | None = None,
        semantic_weight: float = 0.0,
        semantic_depth: int = SEMANTIC_DEPTH,
        semantic_echo_cosine: float = SEMANTIC_ECHO_OFF,
    ) -> None:
        if lexical_weight < 0 or semantic_weight < 0:
            raise ValueError(
                f"weights must be >= 0, got lexical {lexical_weight}, semantic {semantic_weight}"
            )
        if lexical_weight > 0 and lexical is None:
            raise ValueError("lexical_weight > 0 needs the fitted lexical (TF-IDF) model")
        if semantic_weight > 0 and (sentence is None or lexical is None):
            raise ValueError("semantic_weight > 0 needs the sentence encoder and the TF-IDF model")
        self.encoder = encoder
        self.lexical = lexical
        self.lexical_weight = float(lexical_weight)
        self.echo_cosine = echo_cosine
        self.rerank_depth = rerank_depth
        self.lexical_depth = lexical_depth
        self.sentence = sentence
        self.semantic_weight = float(semantic_weight)
        self.semantic_depth = semantic_depth
        self.semantic_echo_cosine = semantic_echo_cosine

    def with_encoder(self, encoder: PairEncoder) -> Scorer:
        """The same score with another neural encoder of the same weights (a recycled one):
        every other part and setting kept."""
        other = copy.copy(self)
        other.encoder = encoder
        # The worker threads are the original's; the copy makes its own on first use.
        other.__dict__.pop("_lexical_thread", None)
        other.__dict__.pop("_semantic_thread", None)
        return other

    @functools.cached_property
    def _lexical_thread(self) -> ThreadPoolExecutor:
        """Where :meth:`rank` runs a hybrid model's lexical search; made on first use (in
        the process that ranks), its thread ends when the scorer is collected."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lexical-search")

    @functools.cached_property
    def _semantic_thread(self) -> ThreadPoolExecutor:
        """Where :meth:`rank` runs the semantic part's encoder and search (as the lexical
        search runs on its own)."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="semantic-search")

    @property
    def is_hybrid(self) -> bool:
        return self.lexical is not None and self.lexical_weight > 0

    @property
    def has_semantic(self) -> bool:
        """Whether the semantic part is in the score."""
        return self.sentence is not None and self.semantic_weight > 0

    @property
    def weights(self) -> tuple[float, float]:
        """``(lexical, semantic)`` weights as the score applies them (0 for a part it lacks)."""
        return (
            self.lexical_weight if self.is_hybrid else 0.0,
            self.semantic_weight if self.has_semantic else 0.0,
        )

    @property
    def bias(self) -> float:
        return float(self.encoder.bias)

    def parts(
        self,
        contexts: Sequence[str],
        candidates: Sequence[Sequence[str]],
        batch_size: int = 256,
        progress: bool = False,
        raw_turns: Sequence[Sequence[str]] | None = None,
        raw_candidates: Sequence[Sequence[str]] | None = None,
    ) -> ScoreParts:
        """The parts of each context's score with each of its candidates.

        Every distinct context and candidate is encoded (and turned into TF-IDF) once.

        Args:
            contexts: normalised contexts.
            candidates: for each context, its normalised candidates (the same count per row).
            batch_size: texts per encoder call.
            progress: show progress bars.
            raw_turns, raw_candidates: the contexts' turns and the candidates as people wrote
                them, when known: what the sentence encoder reads (else it reads the
                normalised text).

        Returns:
            :class:`ScoreParts` of shape ``(len(contexts), candidates per row)``; the cosine
            is computed whenever a lexical model is set, the semantic cosine whenever a
            sentence encoder is, even at weight 0 (for tuning).
        """
        if len(contexts) != len(candidates):
            raise ValueError(f"{len(contexts)} contexts but {len(candidates)} candidate rows")
        if not contexts:
            raise ValueError("nothing to score")
        m = candidate_count(candidates)
        flat = [t for row in candidates for t in row]
        ctx_vecs, ctx_idx = encode_unique(
            contexts, self.encoder.encode_contexts, batch_size, "contexts", progress
        )
        cand_vecs, cand_idx = encode_unique(
            flat, self.encoder.encode_responses, batch_size, "responses", progress
        )
        if ctx_vecs.shape[1] != cand_vecs.shape[1]:
            raise ValueError(
                f"context vectors have {ctx_vecs.shape[1]} dims, responses {cand_vecs.shape[1]}"
            )
        cand_idx = cand_idx.reshape(len(contexts), m)
        neural = np.empty((len(contexts), m), dtype=np.float32)
        for start in range(0, len(contexts), _GATHER_ROWS):
            part = slice(start, start + _GATHER_ROWS)
            neural[part] = np.einsum(
                "nd,nmd->nm", ctx_vecs[ctx_idx[part]], cand_vecs[cand_idx[part]]
            )
        cosine = np.zeros_like(neural)
        if self.lexical is not None:
            cosine = self._pair_cosines(contexts, flat).reshape(len(contexts), m)
        semantic = None
        if self.sentence is not None:
            sentence = self.sentence
            turns = raw_turns if raw_turns is not None else [split_turns(c) for c in contexts]
            said = [sentence_text(t, sentence.context_turns) for t in turns]
            replies = (
                [t for row in raw_candidates for t in row]
                if raw_candidates is not None
                else [sentence_of_normalized(t) for t in flat]
            )
            if len(said) != len(contexts) or len(replies) != len(flat):
                raise ValueError("the raw text must give every context and candidate")
            # Large batches: the encoder shares bulk work among cores (chatbot.sentence).
            s_ctx, s_ctx_idx = encode_unique(
                said, sentence.encode_contexts, 4096, "sentences", progress
            )
            s_cand, s_cand_idx = encode_unique(
                replies, sentence.encode, 4096, "sentences", progress
            )
            semantic = np.einsum(
                "nd,nmd->nm", s_ctx[s_ctx_idx], s_cand[s_cand_idx.reshape(len(contexts), m)]
            )
        return ScoreParts(neural, cosine, self.bias, semantic)

    def _pair_cosines(self, contexts: Sequence[str], flat: Sequence[str]) -> np.ndarray:
        """TF-IDF cosine of each context with each of its ``len(flat) / len(contexts)``
        candidates; each distinct text is turned into TF-IDF once."""
        assert self.lexical is not None
        m = len(flat) // len(contexts)
        unique_c, c_idx = np.unique(np.asarray(contexts, dtype=object), return_inverse=True)
        unique_r, r_idx = np.unique(np.asarray(flat, dtype=object), return_inverse=True)
        c_mat = self.lexical.transform(list(unique_c))
        r_mat = self.lexical.transform(list(unique_r))
        return rowwise_dot(c_mat[np.repeat(c_idx, m)], r_mat[r_idx])

    def pair_scores(
        self,
        contexts: Sequence[str],
        candidates: Sequence[Sequence[str]],
        batch_size: int = 256,
        progress: bool = False,
        raw_turns: Sequence[Sequence[str]] | None = None,
        raw_candidates: Sequence[Sequence[str]] | None = None,
    ) -> np.ndarray:
        """The model's logits for each context with each of its candidates: ``(rows, m)``
        (the arguments are :meth:`parts`')."""
        parts = self.parts(contexts, candidates, batch_size, progress, raw_turns, raw_candidates)
        return parts.combined(*self.weights)

    def rank(
        self,
        contexts: Sequence[str],
        last_turns: Sequence[str],
        repository: ResponseIndex,
        backend: SearchBackend,
        k: int,
        times: StageTimes | None = None,
        raw_turns: Sequence[Sequence[str]] | None = None,
    ) -> list[list[tuple[int, float]]]:
        """The ``k`` best repository responses for each context: ``(row id, logit)``, best first.

        Args:
            contexts: normalised contexts.
            last_turns: the normalised last turn of each context (for the echo rule).
            repository: the pre-encoded responses (with TF-IDF rows for a hybrid model, and
                sentence vectors for a model with a semantic part).
            backend: the neural search over ``repository.vectors``.
            k: responses per context.
            times: adds the seconds spent in each stage (encode, neural search, lexical
                search, sentence encode, semantic search, fusion and filters); a hybrid
                model's lexical search runs beside the others, so the stages add up to more
                than the call.
            raw_turns: each context's turns as the user wrote them, oldest first: what the
                sentence encoder reads (:func:`chatbot.sentence.sentence_text`, and the last
                turn for the semantic echo rule); the normalised turns when not given.
        """
        times = times if times is not None else StageTimes()
        if not contexts:  # nothing to encode: the encoders' shapes need at least one text
            return []
        if self.is_hybrid or self.has_semantic:
            return self._rank_hybrid(contexts, last_turns, repository, backend, k, times, raw_turns)
        with times.stage("encode"):
            queries = self.encoder.encode_contexts(contexts)  # (n, d) cM
        echo = self._echo_rule(repository, last_turns)
        # With the echo rule some of the best are left out: look a little deeper.
        depth = min(len(repository), k if echo is None else _echo_depth(k))
        with times.stage("neural search"):
            scores, ids = backend.search(queries, depth)  # (n, depth) each
        with times.stage("fusion and filters"):
            keep = ids >= 0
            owner = np.nonzero(keep)[0]
            if echo is not None:
                keep[keep] = echo(owner, ids[keep])
            return _best_per_row(scores + np.float32(self.bias), ids, keep, k)

    def _echo_rule(
        self,
        repository: ResponseIndex,
        last_turns: Sequence[str],
        last_rows: sp.csr_matrix | None = None,
        last_sentences: np.ndarray | None = None,
    ) -> Callable[..., np.ndarray] | None:
        """``(context numbers, repository ids) -> mask of the pairs whose response does not
        restate that context's last turn``, or ``None`` when the rule is off or cannot apply
        (no TF-IDF model or rows). Pairs of a whole batch are judged at once. ``last_rows``:
        the last turns' TF-IDF rows, when made already; ``last_sentences``: their sentence
        vectors, for the semantic rule (without them it is not applied)."""
        lexical, rows = self.lexical, repository.lexical
        if lexical is None or rows is None or self.echo_cosine > 1.0:
            return None
        last = last_rows if last_rows is not None else lexical.transform(last_turns)  # (n, V)
        replies = repository.sentence
        if self.semantic_echo_cosine > 1.0:
            replies = None  # the semantic rule off

        def keep(owner: np.ndarray, ids: np.ndarray) -> np.ndarray:
            kept: np.ndarray = _owned_cosines(rows, ids, last, owner) < self.echo_cosine
            if replies is not None and last_sentences is not None and len(ids):
                vectors = np.asarray(replies[ids], dtype=np.float32)
                close = np.einsum("md,md->m", vectors, last_sentences[owner])
                kept &= close < self.semantic_echo_cosine
            return kept

        return keep

    def _rank_hybrid(
        self,
        contexts: Sequence[str],
        last_turns: Sequence[str],
        repository: ResponseIndex,
        backend: SearchBackend,
        k: int,
        times: StageTimes,
        raw_turns: Sequence[Sequence[str]] | None,
    ) -> list[list[tuple[int, float]]]:
        lexical, rows, postings = self.lexical, repository.lexical, repository.postings
        if lexical is None or rows is None or postings is None:
            raise ValueError("a hybrid model needs an index with lexical (TF-IDF) rows")
        # The lexical search needs only the texts: it runs on a thread of its own while this
        # one encodes and searches the vectors (the kernel, faiss and TensorFlow release the
        # GIL), so that a lone request uses two cores: at 1M one client got 48-50 req/s
        # instead of 31-32, 32 clients 96-102 instead of 88-89 (docs/performance.md). Its
        # stage's figure is its own time. The semantic part (the sentence encoder, then its
        # search) likewise: at the real Ubuntu index a lone request took 11.6 ms p50 with it
        # on this thread and 10.5 ms on its own; over HTTP p99 19.3 ms and 17.0 ms
        # (docs/performance.md).
        lexical_depth = min(len(repository), max(k, self.lexical_depth))
        lexical_part = self._lexical_thread.submit(
            _lexical_search, lexical, postings, rows, contexts, last_turns, lexical_depth
        )
        semantic_part = None
        if self.has_semantic:
            semantic_part = self._semantic_thread.submit(
                self._semantic_search, contexts, raw_turns, repository
            )
        try:
            with times.stage("encode"):
                queries = self.encoder.encode_contexts(contexts)  # (n, d) cM
            depth = min(len(repository), max(k, self.rerank_depth))
            with times.stage("neural search"):
                _, neural_ids = backend.search(queries, depth)  # (n, depth)
        finally:
            # An error of either side is raised once both are done.
            futures.wait([lexical_part])
            if semantic_part is not None:
                futures.wait([semantic_part])
        context_rows, last_rows, found, lexical_seconds = lexical_part.result()
        times.add("lexical search", lexical_seconds)
        sentences = last_sentences = None
        if semantic_part is not None:
            sentences, last_sentences, semantic_ids, seconds = semantic_part.result()
            for stage, took in seconds.items():
                times.add(stage, took)
            neural_ids = np.concatenate([neural_ids, semantic_ids], axis=1)
        with times.stage("fusion and filters"):
            ids, cosine = _fused_candidates(neural_ids, found, rows, context_rows)
            keep = ids >= 0
            owner, flat = np.nonzero(keep)[0], ids[keep]
            vectors = np.asarray(repository.rescoring_vectors[flat], dtype=np.float32)
            neural = np.einsum("md,md->m", vectors, queries[owner])
            semantic = None
            if sentences is not None and repository.sentence is not None:
                replies = np.asarray(repository.sentence[flat], dtype=np.float32)
                semantic = np.einsum("md,md->m", replies, sentences[owner])
            scores = np.full(ids.shape, -np.inf, dtype=np.float32)
            lexical_weight, semantic_weight = self.weights
            scores[keep] = hybrid_score(
                neural, cosine[keep], lexical_weight, self.bias, semantic, semantic_weight
            )
            echo = self._echo_rule(repository, last_turns, last_rows, last_sentences)
            if echo is None:
                return _best_per_row(scores, ids, keep, k)
            return _best_unechoed(scores, ids, keep, k, echo)

    def _semantic_search(
        self,
        contexts: Sequence[str],
        raw_turns: Sequence[Sequence[str]] | None,
        repository: ResponseIndex,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """The contexts' sentence vectors, their last turns' (for the semantic echo rule),
        each context's :attr:`semantic_depth` best repository rows by the sentence cosine
        (from the index's :attr:`~chatbot.index.ResponseIndex.sentence_search`; rows padded
        with -1), and the seconds of each stage."""
        assert self.sentence is not None
        times = StageTimes()
        search = repository.sentence_search  # checks the index has sentence vectors
        turns = raw_turns if raw_turns is not None else [split_turns(c) for c in contexts]
        with times.stage("sentence encode"):
            sentences, last_sentences = context_sentences(self.sentence, turns)
        depth = min(len(repository), self.semantic_depth)
        if depth == 0:
            none = np.empty((len(contexts), 0), dtype=np.int64)
            return sentences, last_sentences, none, times.seconds
        with times.stage("semantic search"):
            _, best = search.search(sentences, depth)
        return sentences, last_sentences, np.asarray(best, dtype=np.int64), times.seconds


def _lexical_search(
    lexical: TfidfModel,
    postings: Postings,
    rows: sp.csr_matrix,
    contexts: Sequence[str],
    last_turns: Sequence[str],
    depth: int,
) -> tuple[sp.csr_matrix, sp.csr_matrix, list[tuple[np.ndarray, np.ndarray]], float]:
    """The TF-IDF rows of the contexts and of their last turns (for the echo rule), each
    context's ``depth`` best responses by cosine with their exact cosines (which the fusion
    reuses), and the seconds it took."""
    start = time.perf_counter()
    both = lexical.transform([*contexts, *last_turns])  # one call: each costs checks
    context_rows, last_rows = both[: len(contexts)], both[len(contexts) :]
    found = [postings.top(row, rows, depth) for row in context_rows]
    return context_rows, last_rows, found, time.perf_counter() - start


def _fused_candidates(
    neural_ids: np.ndarray,
    found: Sequence[tuple[np.ndarray, np.ndarray]],
    rows: sp.csr_matrix,
    context_rows: sp.csr_matrix,
) -> tuple[np.ndarray, np.ndarray]:
    """Each context's candidates, the union of its neural and lexical best, with their
    cosines: ``(ids, cosines)``, ``(n, width)`` each, rows padded with id -1.

    The lexical search already computed the exact cosine of what it found; only the neural
    part's other responses need theirs, all of a batch's in one sparse product.
    """
    extras = [
        np.setdiff1d(row[row >= 0], lexical_ids)
        for row, (lexical_ids, _) in zip(neural_ids, found, strict=True)
    ]
    counts = [len(e) for e in extras]
    owner = np.repeat(np.arange(len(extras)), counts)
    extra_cosines = np.split(
        _owned_cosines(rows, np.concatenate(extras), context_rows, owner), np.cumsum(counts)[:-1]
    )
    width = max(len(ids) + n for (ids, _), n in zip(found, counts, strict=True))
    ids = np.full((len(extras), width), -1, dtype=np.int64)
    cosine = np.zeros((len(extras), width), dtype=np.float32)
    for i, ((lexical_ids, lexical_cosines), extra) in enumerate(zip(found, extras, strict=True)):
        m, end = len(lexical_ids), len(lexical_ids) + len(extra)
        ids[i, :m], cosine[i, :m] = lexical_ids, lexical_cosines
        ids[i, m:end], cosine[i, m:end] = extra, extra_cosines[i]
    return ids, cosine


def _best_unechoed(
    scores: np.ndarray,
    ids: np.ndarray,
    keep: np.ndarray,
    k: int,
    echo: Callable[..., np.ndarray],
) -> list[list[tuple[int, float]]]:
    """Like :func:`_best_per_row`, leaving out what ``echo`` rejects, which is judged on each
    row's best few only (a restatement costs a sparse row each to find): the best
    :func:`_echo_depth` first, the rest only for a row left with fewer than ``k``."""
    head = min(ids.shape[1], _echo_depth(k))
    order = np.argsort(-np.where(keep, scores, -np.inf), axis=1, kind="stable")

    def judge(columns: np.ndarray, rows: np.ndarray) -> None:
        judged = np.take_along_axis(keep, columns, 1) & rows[:, None]
        owner, where = np.nonzero(judged)
        if len(owner):
            chosen = columns[owner, where]
            keep[owner, chosen] = echo(owner, ids[owner, chosen])

    judge(order[:, :head], np.ones(len(ids), dtype=bool))
    short = np.take_along_axis(keep, order[:, :head], 1).sum(1) < k
    if short.any():
        judge(order[:, head:], short)
    return _best_per_row(scores, ids, keep, k)


def _echo_depth(k: int) -> int:
    """How deep a ranking is read, or judged first, when restatements are left out of its
    best ``k``: a little deeper than ``k``, since some of the best are echoes.

    Example:
        >>> _echo_depth(3)
        22
    """
    return 2 * k + 16


def _owned_cosines(
    rows: sp.csr_matrix, ids: np.ndarray, queries: sp.csr_matrix, owner: np.ndarray
) -> np.ndarray:
    """TF-IDF cosine of each response ``rows[ids[i]]`` with the query row ``owner[i]``."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.float32)
    # Straight from the CSR arrays (compiled): a sparse row gather and product per call
    # cost scipy about 0.3 ms each in checks and temporaries, several times a request.
    return owned_cosines(
        rows.indptr, rows.indices, rows.data, np.asarray(ids, dtype=np.int64),
        np.asarray(owner, dtype=np.int64), queries.indptr, queries.indices,
        queries.data.astype(np.float32, copy=False), rows.shape[1],
    )  # fmt: skip


def _best_per_row(
    scores: np.ndarray, ids: np.ndarray, keep: np.ndarray, k: int
) -> list[list[tuple[int, float]]]:
    """For each row, the ``k`` best kept ``(id, score)`` pairs, best first (ties: first)."""
    masked = np.where(keep, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    out = []
    for row_ids, row_scores, row_keep in zip(
        np.take_along_axis(ids, order, 1),
        np.take_along_axis(masked, order, 1),
        np.take_along_axis(keep, order, 1),
        strict=True,
    ):
        out.append(
            [
                (int(j), float(x))
                for j, x, ok in zip(row_ids, row_scores, row_keep, strict=True)
                if ok
            ]
        )
    return out
