"""A lexical signal for the hybrid score: TF-IDF cosine between a context and a response.

A dual encoder misses exact word overlap (a package name, an error code) that TF-IDF catches;
adding ``lexical_weight × cosine(tfidf(context), tfidf(response))`` to the neural score helps
both (see docs/results.md). Response TF-IDF vectors are sparse and can be stored beside the
response vectors of an index, so the hybrid still works over a pre-encoded repository.

The weighting is scikit-learn's ``TfidfVectorizer`` default, written out so it can be saved as
plain JSON and reproduced by hand: tf = raw count (or ``1 + ln(count)`` with ``sublinear_tf``),
idf = ``ln((1 + n_docs) / (1 + df)) + 1``, rows L2-normalised. Tokens are whitespace-separated
(texts are already normalised); the ``__eou__``/``__eot__`` markers and words unseen when fitting
are ignored.

Example:
    >>> tfidf = TfidfModel.fit(["a b", "a c"])
    >>> round(float(tfidf.pair_scores(["a b"], ["a b"])[0]), 6)
    1.0
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from chatbot.text import MARKERS

KIND = "tfidf"


class TfidfModel:
    """Fitted TF-IDF weights: a word list and each word's idf.

    Args:
        words: the vocabulary; a word's column is its position.
        idf: one idf per word.
        sublinear_tf: use ``1 + ln(count)`` instead of the raw count.
    """

    def __init__(self, words: Sequence[str], idf: Sequence[float], sublinear_tf: bool = False):
        if len(words) != len(idf):
            raise ValueError(f"{len(words)} words but {len(idf)} idf values")
        self.words = list(words)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.sublinear_tf = sublinear_tf
        self._columns = {w: i for i, w in enumerate(self.words)}
        if len(self._columns) != len(self.words):
            raise ValueError("TF-IDF vocabulary has duplicate words")

    def __len__(self) -> int:
        return len(self.words)

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return [t for t in text.split() if t not in MARKERS]

    @classmethod
    def fit(cls, texts: Iterable[str], min_df: int = 1, sublinear_tf: bool = False) -> TfidfModel:
        """Document frequencies over ``texts``; words in fewer than ``min_df`` texts are dropped.

        Example:
            >>> m = TfidfModel.fit(["a b", "a c"])
            >>> m.words, [round(x, 4) for x in m.idf]
            (['a', 'b', 'c'], [1.0, 1.4055, 1.4055])
        """
        df: Counter[str] = Counter()
        n = 0
        for text in texts:
            df.update(set(cls._tokens(text)))
            n += 1
        words = sorted(w for w, c in df.items() if c >= min_df)
        idf = [math.log((1 + n) / (1 + df[w])) + 1.0 for w in words]
        return cls(words, idf, sublinear_tf)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows, shape ``(len(texts), len(self))``, float32."""
        indptr: list[int] = [0]
        indices: list[int] = []
        values: list[float] = []
        for text in texts:
            counts = Counter(self._columns[t] for t in self._tokens(text) if t in self._columns)
            cols = sorted(counts)
            tf = np.array([counts[c] for c in cols], dtype=np.float64)
            if self.sublinear_tf:
                tf = 1.0 + np.log(tf)
            weights = tf * self.idf[cols] if cols else tf
            norm = float(np.sqrt((weights**2).sum()))
            indices.extend(cols)
            values.extend(weights / norm if norm > 0 else weights)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(values, np.float32), np.asarray(indices, np.int64), indptr),
            shape=(len(texts), len(self.words)),
        )

    def pair_scores(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Cosine of each context with the response at the same position: float32 ``(n,)``."""
        if len(contexts) != len(responses):
            raise ValueError(f"{len(contexts)} contexts but {len(responses)} responses")
        return rowwise_dot(self.transform(contexts), self.transform(responses))

    def save(self, path: Path) -> None:
        data = {
            "kind": KIND,
            "sublinear_tf": self.sublinear_tf,
            "words": self.words,
            "idf": [float(x) for x in self.idf],
        }
        path.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TfidfModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("kind") != KIND:
            raise ValueError(f"{path}: lexical model kind {data.get('kind')!r}, expected {KIND!r}")
        return cls(data["words"], data["idf"], bool(data.get("sublinear_tf", False)))


def rowwise_dot(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    """Dot product of row i of ``a`` with row i of ``b``, for every i: float32 ``(n,)``."""
    return np.asarray(a.multiply(b).sum(axis=1), dtype=np.float32).reshape(-1)
