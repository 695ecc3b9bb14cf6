import keras
import numpy as np
import pytest
import tensorflow as tf

from chatbot.config import ModelConfig
from chatbot.model import DualEncoder, build_dual_encoder, split_turns
from tests.helpers import random_ids, tiny_config, tiny_model, tiny_vocab

MARKER = tiny_vocab().turn_marker_id


@pytest.mark.parametrize(
    "overrides,dim",
    [
        ({}, 8),
        ({"bidirectional": True}, 16),
        ({"shared_encoder": False}, 8),
        ({"hierarchical": True}, 8),
        ({"hierarchical": True, "bidirectional": True, "shared_encoder": False}, 16),
    ],
)
def test_shapes_and_config_round_trip(overrides, dim):
    model = tiny_model(tiny_config(**overrides))
    ids = random_ids(3, 7)
    assert model.encode_contexts(ids).shape == (3, dim)
    assert model.encode_responses(ids[:, :4]).shape == (3, dim)
    assert model((ids, ids[:, :4])).shape == (3,)
    clone = DualEncoder.from_config(model.get_config())
    clone.build_all()
    assert len(clone.weights) == len(model.weights)


def test_shared_encoder_has_fewer_weights_than_separate():
    shared = tiny_model(tiny_config())
    separate = tiny_model(tiny_config(shared_encoder=False))
    assert len(separate.trainable_weights) > len(shared.trainable_weights)


def test_score_is_context_times_m_dot_response_plus_bias():
    model = tiny_model()
    model.b.assign(0.25)
    c_ids, r_ids = random_ids(4, 6, seed=1), random_ids(4, 5, seed=2)
    cm = model.encode_contexts(c_ids).numpy()
    r = model.encode_responses(r_ids).numpy()
    np.testing.assert_allclose(model((c_ids, r_ids)).numpy(), (cm * r).sum(1) + 0.25, rtol=1e-5)
    pairwise = model.pairwise_logits(cm, r).numpy()
    np.testing.assert_allclose(np.diag(pairwise), (cm * r).sum(1) + 0.25, rtol=1e-5)


@pytest.mark.parametrize("hierarchical", [False, True])
def test_right_padding_does_not_change_the_encoding(hierarchical):
    model = tiny_model(tiny_config(hierarchical=hierarchical))
    ids = np.array([[4, 5, MARKER, 6]], dtype="int32")
    padded = np.array([[4, 5, MARKER, 6, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(
        model.encode_contexts(ids).numpy(), model.encode_contexts(padded).numpy(), atol=1e-6
    )


@pytest.mark.parametrize("hierarchical", [False, True])
def test_keras_file_round_trip(tmp_path, hierarchical):
    model = tiny_model(tiny_config(hierarchical=hierarchical))
    ids = random_ids(2, 5)
    ids[:, 2] = MARKER
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.encode_contexts(ids).numpy(), model.encode_contexts(ids).numpy(), atol=1e-6
    )


def _turns_reference(row: list[int], marker: int, max_turns: int, max_tokens: int) -> np.ndarray:
    """What split_turns should make of one row, written the plain way."""
    turns: list[list[int]] = [[]]
    for token in (t for t in row if t != 0):
        turns[-1].append(token)
        if token == marker:
            turns.append([])
    turns = [t for t in turns if t][-max_turns:]
    out = np.zeros((max_turns, max_tokens), dtype=np.int32)
    for i, turn in enumerate(turns):
        out[i, : min(len(turn), max_tokens)] = turn[:max_tokens]
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_turns,max_tokens", [(1, 3), (3, 2), (4, 8)])
def test_split_turns_matches_a_plain_reference(seed, max_turns, max_tokens):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, 8, size=(5, 13)).astype("int32")  # 7 is the marker
    ids[ids == 6] = 7  # more turn ends, consecutive ones too
    for i, length in enumerate(rng.integers(0, 14, size=5)):
        ids[i, length:] = 0  # right padding, an empty row among them when length is 0
    expected = np.stack([_turns_reference(r, 7, max_turns, max_tokens) for r in ids.tolist()])
    got = split_turns(tf.constant(ids), 7, max_turns, max_tokens).numpy()
    np.testing.assert_array_equal(got, expected)
    compiled = tf.function(lambda x: split_turns(x, 7, max_turns, max_tokens), jit_compile=True)
    np.testing.assert_array_equal(compiled(tf.constant(ids)).numpy(), expected)


def test_a_hierarchical_context_reads_only_its_last_turns():
    model = tiny_model(tiny_config(hierarchical=True, max_turns=2, max_turn_tokens=3))
    base = [4, MARKER, 5, 6, MARKER, 7, 8, 10, MARKER]  # ids above the markers' (2, 3)
    encode = lambda row: model.encode_contexts(np.array([row], "int32")).numpy()  # noqa: E731
    # A turn before the last two, and a turn's tokens past the third, are not read ...
    np.testing.assert_allclose(encode([9, *base[1:]]), encode(base), atol=1e-6)
    np.testing.assert_allclose(encode([*base[:8], 9, MARKER]), encode(base), atol=1e-6)
    # ... the last turns are.
    assert np.abs(encode([*base[:5], 9, 8, 10, MARKER]) - encode(base)).max() > 1e-4


def test_a_hierarchical_encoder_needs_the_turn_marker():
    config = ModelConfig(vocab_size=50, embedding_dim=4, hidden_size=4, hierarchical=True)
    with pytest.raises(ValueError, match="__eot__"):
        build_dual_encoder(config, 50)
