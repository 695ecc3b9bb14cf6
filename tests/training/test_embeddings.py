import dataclasses

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.vocab import Vocab
from training.embeddings import load_word_vectors
from training.errors import DataError
from training.presets import PRESETS
from training.synthetic import write_synthetic_udc
from training.train import train


def test_vectors_land_in_vocabulary_order(tmp_path):
    vocab = Vocab.build([["cat", "dog", "dog"]], max_size=10, min_count=1)  # dog=2, cat=3
    path = tmp_path / "vectors.txt"
    path.write_text("2 3\ncat 1 2 3\nbird 9 9 9\ndog 4 5 6\n")  # word2vec header first
    matrix, found = load_word_vectors(path, vocab, dim=3)
    assert found == 2
    np.testing.assert_array_equal(matrix[vocab.encode(["dog"])[0]], [4, 5, 6])
    np.testing.assert_array_equal(matrix[vocab.encode(["cat"])[0]], [1, 2, 3])
    np.testing.assert_array_equal(matrix[0], [0, 0, 0])  # padding


def test_a_short_vector_names_the_line(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("cat 1 2 3\ndog 4 5\n")
    with pytest.raises(DataError, match=r"vectors.txt:2: expected a word and 3 numbers, got 2"):
        load_word_vectors(path, Vocab.build([["cat", "dog"]], 10, 1), dim=3)


def test_training_starts_from_the_given_vectors(tmp_path):
    data = write_synthetic_udc(tmp_path / "data", 300, 20, 20)
    model_config, train_config = PRESETS["tiny"]
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("w1 " + " ".join(["0.5"] * model_config.embedding_dim) + "\n")
    train(
        data / "train.csv",
        None,
        tmp_path / "model",
        model_config,
        dataclasses.replace(train_config, max_steps=1),
        embeddings_file=vectors,
    )
    artifact = load_artifact(tmp_path / "model")
    row = artifact.model.embedding.embeddings.numpy()[artifact.vocab.encode(["w1"])[0]]
    # One Adam step moves each weight by about the learning rate (0.005) at most.
    np.testing.assert_allclose(row, 0.5, atol=0.02)
