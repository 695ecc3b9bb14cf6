import json

import numpy as np
import pytest
import tensorflow as tf

from chatbot.artifact import ArtifactError, load_artifact
from tests.helpers import random_ids, tiny_artifact, tiny_config, tiny_model


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    return tiny_artifact(tmp_path_factory.mktemp("a") / "model")


def test_round_trip_gives_the_same_vectors(artifact_dir):
    artifact = load_artifact(artifact_dir)
    ids = random_ids(3, 6)
    expected = tiny_model().encode_contexts(ids).numpy()
    np.testing.assert_allclose(artifact.model.encode_contexts(ids).numpy(), expected, atol=1e-6)
    assert artifact.version.startswith("tiny-")
    assert artifact.manifest["versions"]["tensorflow"] == tf.__version__


def test_a_hierarchical_model_round_trips(tmp_path):
    config = tiny_config(hierarchical=True, max_turns=3, max_turn_tokens=4)
    artifact = load_artifact(tiny_artifact(tmp_path / "model", config, seed=2))
    assert artifact.config.hierarchical and artifact.model.hierarchical
    ids = random_ids(3, 9)
    ids[:, 3] = artifact.vocab.turn_marker_id
    expected = tiny_model(config, seed=2).encode_contexts(ids).numpy()
    np.testing.assert_allclose(artifact.model.encode_contexts(ids).numpy(), expected, atol=1e-6)
    loaded = tf.saved_model.load(str(tmp_path / "model" / "saved_model"))
    out = loaded.signatures["encode_contexts"](token_ids=tf.constant(ids))["vectors"]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_saved_model_signatures_match_keras(artifact_dir):
    loaded = tf.saved_model.load(str(artifact_dir / "saved_model"))
    ids = random_ids(2, 5)
    model = load_artifact(artifact_dir).model
    out = loaded.signatures["encode_contexts"](token_ids=tf.constant(ids))["vectors"]
    np.testing.assert_allclose(out.numpy(), model.encode_contexts(ids).numpy(), atol=1e-5)
    scores = loaded.signatures["score"](context_ids=tf.constant(ids), response_ids=tf.constant(ids))
    np.testing.assert_allclose(scores["logits"].numpy(), model((ids, ids)).numpy(), atol=1e-5)


def test_encoder_pads_and_batches_without_changing_results(artifact_dir):
    encoder = load_artifact(artifact_dir).encoder(jit_compile=False)
    texts = ["hello how are you __eou__ __eot__", "hi __eou__ __eot__", "bye"]
    together = encoder.encode_contexts(texts, batch_size=2)
    alone = np.concatenate([encoder.encode_contexts([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_damaged_weights_are_reported(artifact_dir, tmp_path):
    broken = _copy(artifact_dir, tmp_path / "broken")
    weights = broken / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])  # flip bits, as a bad disk would
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model.weights.h5 is damaged"):
        load_artifact(broken)


def test_missing_files_and_manifest_are_reported(artifact_dir, tmp_path):
    with pytest.raises(ArtifactError, match=r"manifest.json is missing"):
        load_artifact(tmp_path)
    broken = _copy(artifact_dir, tmp_path / "novocab")
    (broken / "vocab.txt").unlink()
    with pytest.raises(ArtifactError, match=r"vocab.txt is missing"):
        load_artifact(broken)


def test_config_that_does_not_fit_the_weights_is_reported(artifact_dir, tmp_path):
    broken = _copy(artifact_dir, tmp_path / "mismatch")
    config = json.loads((broken / "config.json").read_text()) | {"hidden_size": 9}
    (broken / "config.json").write_text(json.dumps(config))
    manifest = json.loads((broken / "manifest.json").read_text())
    from chatbot.artifact import sha256_file

    manifest["files"]["config.json"] = sha256_file(broken / "config.json")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"does not fit config.json"):
        load_artifact(broken)
