"""Recycling an encoder: a new model of the same network reuses its compiled functions and
computes exactly what a fresh encoder of that model computes."""

from __future__ import annotations

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.encoder import TextEncoder
from chatbot.ranker import Ranker
from tests.helpers import tiny_artifact, tiny_bundle, tiny_config

TEXTS = ["hello how are you __eou__", "fine thanks __eou__ __eot__ bye __eou__"]


def test_a_recycled_encoder_computes_what_a_fresh_one_does(tmp_path):
    old = load_artifact(tiny_artifact(tmp_path / "a", seed=0))
    new = load_artifact(tiny_artifact(tmp_path / "b", seed=1))
    spare = old.encoder()
    spare.encode_contexts(TEXTS)  # compiled for these shapes

    recycled = spare.recycled_for(new.model, new.vocab, new.config)

    assert recycled._contexts is spare._contexts  # the compiled function, not a new one
    fresh = new.encoder()
    np.testing.assert_allclose(
        recycled.encode_contexts(TEXTS), fresh.encode_contexts(TEXTS), atol=1e-6
    )
    np.testing.assert_allclose(
        recycled.encode_responses(TEXTS), fresh.encode_responses(TEXTS), atol=1e-6
    )


def test_a_fixed_bias_is_read_once_and_again_after_recycling(tmp_path):
    old = load_artifact(tiny_artifact(tmp_path / "a", seed=0))
    new = load_artifact(tiny_artifact(tmp_path / "b", seed=1))
    old.model.b.assign(0.5)
    spare = old.encoder()
    assert spare.bias == 0.5
    old.model.b.assign(0.75)  # a loaded artifact's weights do not change: the read stands
    assert spare.bias == 0.5

    new.model.b.assign(1.25)
    assert spare.recycled_for(new.model, new.vocab, new.config).bias == 1.25


def test_an_encoder_of_a_model_in_training_follows_its_bias(tmp_path):
    artifact = load_artifact(tiny_artifact(tmp_path / "a", seed=0))
    encoder = TextEncoder(artifact.model, artifact.vocab, artifact.config, jit_compile=False)
    artifact.model.b.assign(0.5)
    assert encoder.bias == 0.5
    artifact.model.b.assign(0.75)
    assert encoder.bias == 0.75


@pytest.mark.parametrize(
    "mine,theirs",
    [
        ({}, {"hidden_size": 6}),
        ({}, {"hierarchical": True}),
        # The same weights, read differently: the turn counts are compiled in, not weights.
        ({"hierarchical": True}, {"hierarchical": True, "max_turns": 3}),
    ],
)
def test_another_network_does_not_fit(tmp_path, mine, theirs):
    old = load_artifact(tiny_artifact(tmp_path / "a", tiny_config(**mine)))
    other = load_artifact(tiny_artifact(tmp_path / "b", tiny_config(**theirs)))
    spare = old.encoder()
    assert not spare.fits(other.model, other.config)
    with pytest.raises(ValueError, match="differ"):
        spare.recycled_for(other.model, other.vocab, other.config)


def test_ranker_load_takes_a_fitting_spare(tmp_path):
    model_a, index_a = tiny_bundle(tmp_path / "a", seed=0)
    model_b, index_b = tiny_bundle(tmp_path / "b", seed=1)
    spare = Ranker.load(model_a, index_a).scorer.encoder
    assert spare.warm_up(4) > 0
    spares = [spare]

    ranker = Ranker.load(model_b, index_b, spares=spares)

    assert spares == []
    assert ranker.scorer.encoder._contexts is spare._contexts
    assert ranker.scorer.encoder.warm_up(4) == 0  # nothing left to compile
    expected = Ranker.load(model_b, index_b).respond([["good morning"]], k=4)
    assert ranker.respond([["good morning"]], k=4) == expected
