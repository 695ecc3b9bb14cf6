import keras
import numpy as np
import pytest

from chatbot.model import DualEncoder
from tests.helpers import random_ids, tiny_config, tiny_model


@pytest.mark.parametrize(
    "overrides,dim",
    [({}, 8), ({"bidirectional": True}, 16), ({"shared_encoder": False}, 8)],
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


def test_right_padding_does_not_change_the_encoding():
    model = tiny_model()
    ids = np.array([[3, 4, 5]], dtype="int32")
    padded = np.array([[3, 4, 5, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(
        model.encode_contexts(ids).numpy(), model.encode_contexts(padded).numpy(), atol=1e-6
    )


def test_keras_file_round_trip(tmp_path):
    model = tiny_model()
    ids = random_ids(2, 5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.encode_contexts(ids).numpy(), model.encode_contexts(ids).numpy(), atol=1e-6
    )
