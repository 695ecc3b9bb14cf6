"""Word overlap inside the training loss, so that the network learns what TF-IDF misses.

A hybrid model serves ``cᵀMr + b + w × cosine(tfidf(c), tfidf(r))``, but a plain dual encoder
is trained on ``cᵀMr`` alone: it spends its capacity on pairs that share words, which the
TF-IDF part already ranks well. With a residual weight ``λ`` every training logit gets
``λ × cosine`` too (fixed, no gradient), as in CLEAR (Gao et al., 2021, "Complement Lexical
Retrieval Model with Semantic Residual Embeddings"): a pair the cosine already separates costs
almost nothing, and the gradient goes to the pairs it gets wrong.

The cosine is computed from the batch's token ids with the hybrid's own TF-IDF weights
(:func:`training.hybrid.fit_lexical`: sub-linear tf, its idf per word), so it is the served
cosine of the texts the network reads: the last ``max_context_tokens`` of a context, words of
the model's vocabulary only.

Example:
    >>> import numpy as np
    >>> idf = np.array([0.0, 0.0, 1.0, 2.0], dtype="float32")  # padding and unknown: 0
    >>> ids = tf.constant([[2, 3, 0], [3, 3, 1]])
    >>> np.round(tfidf_cosines(ids, ids, idf).numpy().astype(float), 3).tolist()
    [[1.0, 0.894], [0.894, 1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from chatbot.lexical import TfidfModel
from chatbot.scoring import PairEncoder, Scorer
from chatbot.vocab import Vocab
from training.hybrid import fit_lexical


def vocab_idf(lexical: TfidfModel, vocab: Vocab) -> np.ndarray:
    """``lexical``'s idf of each vocabulary word, in id order (0 for padding, the unknown
    word, the turn markers and words the TF-IDF model dropped)."""
    idf_of = dict(zip(lexical.words, lexical.idf.tolist(), strict=True))
    return np.array([idf_of.get(word, 0.0) for word in vocab.words], dtype=np.float32)


def tfidf_rows(ids: tf.Tensor, idf: tf.Tensor | np.ndarray) -> tf.Tensor:
    """``(rows, vocab)`` L2-normalised TF-IDF rows of padded token ids (sub-linear tf)."""
    counts = tf.math.bincount(
        tf.cast(ids, tf.int32), minlength=len(idf), maxlength=len(idf), axis=-1, dtype=tf.float32
    )
    weights = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0) * idf
    return tf.math.l2_normalize(weights, axis=-1)


def tfidf_cosines(a_ids: tf.Tensor, b_ids: tf.Tensor, idf: tf.Tensor | np.ndarray) -> tf.Tensor:
    """``(len(a), len(b))`` TF-IDF cosines of every pair of rows (0 for an empty row)."""
    return tf.matmul(tfidf_rows(a_ids, idf), tfidf_rows(b_ids, idf), transpose_b=True)


@dataclass(frozen=True)
class Residual:
    """The lexical residual of a training run: the hybrid TF-IDF model, its idf in vocabulary
    order, and the weight of its cosine in the loss."""

    lexical: TfidfModel
    idf: np.ndarray
    weight: float

    @classmethod
    def fit(cls, train_path: Path, vocab: Vocab, weight: float) -> Residual:
        lexical = fit_lexical(train_path)
        return cls(lexical, vocab_idf(lexical, vocab), weight)

    def rows(self, ids: tf.Tensor) -> tf.Tensor:
        """The TF-IDF rows of a batch's token ids, computed once for all of their pairs."""
        return tfidf_rows(ids, self.idf)

    def logits(self, context_rows: tf.Tensor, response_ids: tf.Tensor) -> tf.Tensor:
        """``(contexts, responses)``: the weighted cosines added to the softmax's logits (ids
        carry no gradient, so neither do they)."""
        return self.weight * tf.matmul(context_rows, self.rows(response_ids), transpose_b=True)

    def scorer(self, encoder: PairEncoder) -> Scorer:
        """The score the network is trained within."""
        return Scorer(encoder, self.lexical, self.weight)
