"""The training loss's TF-IDF cosines are the hybrid's own, computed from token ids."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from chatbot.lexical import TfidfModel
from chatbot.vocab import PAD, UNK, Vocab
from training.lexical_residual import tfidf_cosines, vocab_idf

TEXTS = ["sudo apt-get install vim", "apt-get apt-get update", "try vim vim vim", "hello there"]


def _ids(vocab: Vocab, texts: list[str], length: int = 6) -> tf.Tensor:
    rows = np.zeros((len(texts), length), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = vocab.encode(text.split())
        rows[i, : len(ids)] = ids
    return tf.constant(rows)


def test_cosines_from_token_ids_match_the_hybrid_tfidf_model():
    lexical = TfidfModel.fit(TEXTS, sublinear_tf=True)
    # "hello" is missing from the vocabulary: an unknown word, which counts for nothing.
    vocab = Vocab([PAD, UNK, "__eou__", *[w for w in lexical.words if w != "hello"]])
    idf = vocab_idf(lexical, vocab)
    assert idf[0] == idf[1] == idf[2] == 0.0  # padding, unknown, a turn marker
    queries = ["vim install", "apt-get apt-get vim", "there"]

    got = tfidf_cosines(_ids(vocab, queries), _ids(vocab, TEXTS), idf).numpy()

    without_hello = [t.replace("hello", "") for t in TEXTS]
    want = np.array([lexical.pair_scores([q] * len(TEXTS), without_hello) for q in queries])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got[1, 1] > got[1, 0] > 0.0  # repeated words count sub-linearly, not zero
