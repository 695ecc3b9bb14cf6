"""The semantic part of the score: a pretrained sentence encoder, on LiteRT.

The dual encoder learns from one corpus' pairs; at the size of a support team's logs it ranks
below TF-IDF against a whole repository (docs/results.md). A sentence encoder pretrained on a
billion sentence pairs (all-MiniLM-L6-v2, Wang et al. 2020) knows what the words mean. Its
cosine between the context's last turns and a reply, weighted by the model's
``semantic_weight`` (chosen on validation rows, :mod:`training.sentence`), is the third part of
the score (:func:`chatbot.scoring.hybrid_score`).

It reads text as people wrote it (case, punctuation), not the normalised form: the index keeps
a vector per reply of its shown text, and the service passes the raw turns. Rows that only
exist normalised (a UDC CSV) are read as they are.

An artifact holds, listed with checksums in its manifest::

    sentence.tflite          the network, dynamic-range int8 weights, one text per call
    sentence_tokenizer.json  its WordPiece tokenizer (Hugging Face ``tokenizers``)
    sentence.json            vector size, token caps, turns read, where it came from
    sentence_adapter.npy     optional: a (dim, dim) matrix W that maps a context's vector
                             c to c + cW (then unit length), learnt from the bot's own
                             (context, reply) pairs (:mod:`training.sentence_adapter`)

The pretrained encoder places a question nearest to other questions like it; the adapter
moves a context towards the replies that answer such contexts. Replies, the last turn (for
the semantic echo rule) and the index's vectors are not mapped, so an index stays valid.

Example:
    >>> sentence_text(["how do i", "what card?", "an nvidia one", "the driver fails"], 3)
    'what card? an nvidia one the driver fails'
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

SENTENCE_MODEL = "sentence.tflite"
SENTENCE_TOKENIZER = "sentence_tokenizer.json"
SENTENCE_INFO = "sentence.json"
SENTENCE_FILES = (SENTENCE_MODEL, SENTENCE_TOKENIZER, SENTENCE_INFO)
SENTENCE_ADAPTER = "sentence_adapter.npy"  # optional
# Tokens read of a reply. The model was trained on 128 and is served on up to 256; 128 bounds
# a long paste's cost.
MAX_TOKENS = 128
# Tokens read of a query (the user's last turns), its last ones: what each request pays for.
# On the 950 own validation rows 64 tokens ranked as well as 128 (repository MRR 0.129
# against 0.127; the sentence part alone 0.104 against 0.105) in 25 % less time; 48 cost the
# part alone (0.100) (docs/performance.md, "The semantic part's cost").
CONTEXT_TOKENS = 64
# Turns of a context the sentence encoder reads: the latest ones (chosen in the probe: the
# question is in the last turns, and older ones dilute a mean-pooled vector).
CONTEXT_TURNS = 3
# A call with this many texts (an index's replies, evaluation rows) is shared among
# interpreters on every core; a request's few texts run on the caller's thread.
BULK_TEXTS = 256
# Texts tokenised at once in bulk work (the tokenizer's encodings are large; their ids small).
TOKENIZE_CHUNK = 2048


def sentence_text(turns: Sequence[str], context_turns: int = CONTEXT_TURNS) -> str:
    """What the sentence encoder reads of a context: its last ``context_turns`` turns."""
    return " ".join(t.strip() for t in turns[-context_turns:] if t.strip())


def _token_ids(tokenizer: Any, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's token ids as int32, tokenised :data:`TOKENIZE_CHUNK` texts at a time: a
    tokenizer's encodings of 107,098 texts at once took 520 MB, their ids 10 MB."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = tokenizer.encode_batch(list(texts[start : start + TOKENIZE_CHUNK]))
        ids.extend(np.asarray(e.ids, dtype=np.int32) for e in chunk)
    return ids


def shortest_first(ids: Sequence[Sized]) -> list[int]:
    """The order bulk work encodes texts in: shortest first, so that consecutive calls of
    one length reuse the interpreter's tensors instead of resizing them (8 % more texts a
    second on chitchat replies); ties keep their order.

    Example:
        >>> shortest_first([[1, 2, 3], [4], [5, 6], [7]])
        [1, 3, 2, 0]
    """
    return sorted(range(len(ids)), key=lambda i: len(ids[i]))


def adapt_vectors(vectors: np.ndarray, adapter: np.ndarray | None) -> np.ndarray:
    """``vectors + vectors @ adapter``, each row of unit length; ``vectors`` for no adapter.

    Example:
        >>> adapt_vectors(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]))
        array([[0.70710678, 0.70710678]])
    """
    if adapter is None:
        return vectors
    mapped = vectors + vectors @ adapter
    norms = np.linalg.norm(mapped, axis=1, keepdims=True)
    return mapped / np.where(norms > 0, norms, 1.0)


def read_sentence_info(path: Path) -> dict[str, Any]:
    """``sentence.json``, checked: ``dim``, ``max_tokens``, ``context_turns`` and ``source``
    (and ``context_tokens``, which files written before it lack: they read ``max_tokens``)."""
    info = json.loads(path.read_text())
    for key in ("dim", "max_tokens", "context_turns", "source"):
        if key not in info:
            raise KeyError(f"missing {key!r}")
    if int(info["dim"]) < 1 or int(info["max_tokens"]) < 2 or int(info["context_turns"]) < 1:
        raise ValueError(f"invalid values {info}")
    return info


class SentenceEncoder:
    """Texts in, L2-normalised sentence vectors out (``(n, dim)`` float32).

    Each text is its own call (no padding, so no mask, and the cost follows its length).
    Replies are read from their start (:data:`MAX_TOKENS`), queries from their end
    (``context_tokens``: the latest words of the last turns). One interpreter serves one call
    at a time; bulk work (:data:`BULK_TEXTS` or more texts) gives each thread its own.

    Args:
        folder: the artifact holding :data:`SENTENCE_FILES`.
        info: its ``sentence.json``.
        adapter: the context adapter W, ``(dim, dim)``, or ``None``.
    """

    def __init__(
        self, folder: Path, info: dict[str, Any], adapter: np.ndarray | None = None
    ) -> None:
        from tokenizers import Tokenizer

        self.model_file = folder / SENTENCE_MODEL
        self.dim = int(info["dim"])
        self.context_turns = int(info["context_turns"])
        self.source = str(info["source"])
        if adapter is not None and adapter.shape != (self.dim, self.dim):
            raise ValueError(f"an adapter of shape {adapter.shape} for vectors of {self.dim}")
        self.adapter = None if adapter is None else np.asarray(adapter, dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(folder / SENTENCE_TOKENIZER))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(info["max_tokens"]))
        self.query_tokenizer = Tokenizer.from_str(self.tokenizer.to_str())
        context_tokens = int(info.get("context_tokens", info["max_tokens"]))
        self.query_tokenizer.enable_truncation(context_tokens, direction="left")
        self._lock = threading.Lock()
        self._run = self.runner()

    def runner(self) -> Any:
        """A LiteRT interpreter of its own, on one thread (for :meth:`encode_ids`)."""
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(self.model_file), num_threads=1)
        return interpreter.get_signature_runner()

    def reply_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The token ids the encoder reads of replies (their first :data:`MAX_TOKENS`)."""
        return _token_ids(self.tokenizer, texts)

    @staticmethod
    def encode_ids(run: Any, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """One text's vector from its token ids, on the interpreter ``run`` (:meth:`runner`)."""
        return np.asarray(run(ids=np.asarray(ids, dtype=np.int32)[None])["vector"][0], np.float32)

    def encode_queries(
        self, texts: Sequence[str], threads: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """The sentence vectors of queries (contexts, last turns), read from their end."""
        return self.encode(texts, threads, progress, query=True)

    def encode_contexts(
        self, texts: Sequence[str], threads: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """The vectors a context is scored with: :meth:`encode_queries`, then :meth:`adapt`."""
        return self.adapt(self.encode_queries(texts, threads, progress))

    def adapt(self, vectors: np.ndarray) -> np.ndarray:
        """Contexts' query vectors as the semantic score reads them: mapped by the adapter
        (``v + vW``, unit length again) when the artifact has one, else unchanged."""
        return adapt_vectors(vectors, self.adapter)

    def encode(
        self,
        texts: Sequence[str],
        threads: int | None = None,
        progress: bool = False,
        query: bool = False,
    ) -> np.ndarray:
        """The sentence vectors of ``texts`` (replies; ``query``: read as queries are);
        ``threads`` interpreters share the work (by default one per core for bulk work, else
        one)."""
        tokenizer = self.query_tokenizer if query else self.tokenizer
        if threads is None:
            threads = (os.cpu_count() or 1) if len(texts) >= BULK_TEXTS else 1
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if threads <= 1 or len(texts) < 2 * threads:
            with self._lock:
                for i, text in enumerate(tqdm(texts, "sentences", disable=not progress)):
                    out[i] = self.encode_ids(self._run, tokenizer.encode(text).ids)
            return out
        ids = _token_ids(tokenizer, texts)
        order = shortest_first(ids)
        local = threading.local()

        def one(i: int) -> None:
            if not hasattr(local, "run"):
                local.run = self.runner()
            out[i] = self.encode_ids(local.run, ids[i])

        with ThreadPoolExecutor(threads, thread_name_prefix="sentence") as pool:
            done = pool.map(one, order, chunksize=64)
            for _ in tqdm(done, "sentences", total=len(texts), disable=not progress):
                pass
        return out
