"""Initial word vectors: from a word-vector text file (GloVe / word2vec text format), or
trained with word2vec on the training sentences."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatbot.vocab import Vocab
from training.errors import DataError

log = logging.getLogger(__name__)


def load_word_vectors(path: Path, vocab: Vocab, dim: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """An embedding matrix in vocabulary order, and how many words the file covered.

    Each line is ``word v1 v2 ... v_dim``; a word2vec header line (``count dim``) is skipped.
    Words the file lacks get small random vectors, padding gets zeros.

    Args:
        path: the word-vector file.
        vocab: the model's vocabulary.
        dim: the model's embedding size; every vector in the file must have it.
        seed: for the vectors of uncovered words.

    Example::

        matrix, found = load_word_vectors(Path("glove.6B.100d.txt"), vocab, 100)
    """
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    matrix[0] = 0.0
    ids = {w: i for i, w in enumerate(vocab.words)}
    found = 0
    with path.open(encoding="utf-8", errors="strict") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) != dim + 1:
                raise DataError(
                    path, number, f"expected a word and {dim} numbers, got {len(parts) - 1}"
                )
            index = ids.get(parts[0])
            if index is None or index < 2:
                continue
            try:
                matrix[index] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError as exc:
                raise DataError(path, number, f"not a number ({exc})") from exc
            found += 1
    log.info("word vectors: %d of %d vocabulary words found in %s", found, len(vocab) - 2, path)
    return matrix, found


def train_word2vec(
    sentences: Path,
    words: Sequence[str],
    dim: int,
    seed: int = 0,
    epochs: int = 5,
    scale: float = 0.1,
) -> tuple[np.ndarray, int]:
    """An embedding table initialised from word2vec (skip-gram) trained on ``sentences``.

    Args:
        sentences: one normalised sentence a line.
        words: the model's vocabulary, in id order (``<pad>`` first).
        dim: vector size (the model's ``embedding_dim``).
        seed: seeds word2vec and the vectors of words it does not know.
        epochs: passes over the sentences.
        scale: the standard deviation the word2vec vectors are rescaled to (Keras' own
            initialisation, uniform in +-0.05, has 0.029).

    Returns:
        The ``(len(words), dim)`` float32 table (padding row zero) and how many words got a
        word2vec vector.
    """
    from gensim.models import Word2Vec  # optional dependency, heavy import

    with open(sentences, encoding="utf-8") as f:
        corpus = [line.split() for line in f if line.strip()]
    model = Word2Vec(
        corpus,
        vector_size=dim,
        window=5,
        min_count=2,
        sg=1,
        negative=5,
        workers=2,
        epochs=epochs,
        seed=seed,
    )
    kv = model.wv
    rng = np.random.default_rng(seed)
    table = rng.uniform(-0.05, 0.05, (len(words), dim))
    std = float(np.std(kv.vectors)) or 1.0
    found = 0
    for i, word in enumerate(words):
        if word in kv.key_to_index:
            table[i] = kv[word] * (scale / std)
            found += 1
    table[0] = 0.0
    return table.astype(np.float32), found
