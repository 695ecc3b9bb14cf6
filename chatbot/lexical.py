"""A lexical signal for the hybrid score: TF-IDF cosine between a context and a response.

A dual encoder misses exact word overlap (a package name, an error code) that TF-IDF catches;
adding ``lexical_weight × cosine(tfidf(context), tfidf(response))`` to the neural score helps
both (see docs/results.md). Response TF-IDF vectors are sparse and can be stored beside the
response vectors of an index, so the hybrid still works over a pre-encoded repository.

The weighting is scikit-learn's ``TfidfVectorizer`` default, saved as plain JSON (words and
idf) so it can be checked by hand: tf = raw count (or ``1 + ln(count)`` with ``sublinear_tf``),
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
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from chatbot.text import MARKERS

KIND = "tfidf"


class TfidfModel:
    """Fitted TF-IDF weights (scikit-learn's ``TfidfVectorizer``): a word list and idf values.

    Args:
        words: the vocabulary; a word's column is its position (sorted, as scikit-learn does).
        idf: one idf per word.
        sublinear_tf: use ``1 + ln(count)`` instead of the raw count.
    """

    def __init__(self, words: Sequence[str], idf: Sequence[float], sublinear_tf: bool = False):
        if len(words) != len(idf):
            raise ValueError(f"{len(words)} words but {len(idf)} idf values")
        if len(set(words)) != len(words):
            raise ValueError("TF-IDF vocabulary has duplicate words")
        self.words = list(words)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.sublinear_tf = sublinear_tf
        self._columns = {word: i for i, word in enumerate(self.words)}
        self._idf32 = self.idf.astype(np.float32)

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
            >>> m.words, [round(float(x), 4) for x in m.idf]
            (['a', 'b', 'c'], [1.0, 1.4055, 1.4055])
        """
        vectorizer = _vectorizer(sublinear_tf, min_df=min_df)
        try:
            vectorizer.fit(texts)
        except ValueError:  # no word reached min_df: an empty model that scores 0
            return cls([], [], sublinear_tf)
        return cls(list(vectorizer.get_feature_names_out()), vectorizer.idf_, sublinear_tf)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows, shape ``(len(texts), len(self))``, float32.

        The same rows as scikit-learn's ``TfidfVectorizer.transform`` (to float32 rounding),
        built directly: its per-call checks cost milliseconds, which a request for one
        context would pay twice on the serving path.

        Example:
            >>> m = TfidfModel.fit(["a b", "a c"])
            >>> rows = m.transform(["b b a", "zzz"]).toarray()
            >>> [[round(float(x), 3) for x in row] for row in rows]
            [[0.335, 0.942, 0.0], [0.0, 0.0, 0.0]]
        """
        columns = self._columns
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        cols: list[int] = []
        for i, text in enumerate(texts):
            cols.extend(columns[t] for t in text.split() if t in columns)
            indptr[i + 1] = len(cols)
        rows = np.repeat(np.arange(len(texts)), np.diff(indptr))
        counts = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (rows, np.asarray(cols, dtype=np.int64))),
            shape=(len(texts), len(self.words)),
        )
        counts.sum_duplicates()  # one entry per (text, word), the count; columns sorted
        if self.sublinear_tf:
            counts.data = 1 + np.log(counts.data)
        counts.data *= self._idf32[counts.indices]
        owner = np.repeat(np.arange(len(texts)), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(owner, weights=counts.data**2, minlength=len(texts)))
        counts.data /= norms[owner].astype(np.float32)
        return counts

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


def _vectorizer(
    sublinear_tf: bool, min_df: int = 1, vocabulary: Sequence[str] | None = None
) -> TfidfVectorizer:
    # Texts are normalised already: split on whitespace, keep case, drop the turn markers.
    return TfidfVectorizer(
        tokenizer=TfidfModel._tokens,
        token_pattern=None,
        lowercase=False,
        min_df=min_df,
        sublinear_tf=sublinear_tf,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def rowwise_dot(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    """Dot product of row i of ``a`` with row i of ``b``, for every i: ``(n,)`` in their dtype.

    Example:
        >>> rowwise_dot(sp.csr_matrix([[1.0, 2.0], [0.0, 1.0]]), sp.csr_matrix([[3.0, 1.0]] * 2))
        array([5., 1.])
    """
    return np.asarray(a.multiply(b).sum(axis=1)).reshape(-1)
