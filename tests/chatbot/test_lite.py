"""The encoders on LiteRT: the same vectors and rankings as on TensorFlow, without importing
TensorFlow, and clear errors for artifacts that lack them or whose conversion is damaged."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact, rewrite_files
from chatbot.errors import ArtifactError
from chatbot.lite import LITE_BATCHES, LITE_INFO, LITE_MODEL, read_lite_info
from chatbot.lite_export import export_lite
from chatbot.ranker import Ranker, serving_runtime
from tests.helpers import WORDS, tiny_artifact, tiny_bundle, tiny_config

ROOT = Path(__file__).resolve().parents[2]


VERSIONS: dict[Path, str] = {}  # each converted model's version before its conversion


@pytest.fixture(scope="module")
def lite_bundle(tmp_path_factory) -> tuple[Path, Path]:
    model_dir, index_dir = tiny_bundle(tmp_path_factory.mktemp("lite"))
    VERSIONS[model_dir] = load_artifact(model_dir, network=False).version
    export_lite(model_dir)
    return model_dir, index_dir


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(0, 20))) for _ in range(n)]
    return [*texts[:-1], ""]  # an empty text too: every id padding


@pytest.mark.parametrize("n", [1, 3, 70])  # 70: more than the largest batch, 64
def test_lite_vectors_match_the_keras_network(lite_bundle, n):
    artifact = load_artifact(lite_bundle[0])
    lite, keras = artifact.lite_encoder(), artifact.encoder()
    texts = _texts(n, seed=n)
    np.testing.assert_allclose(
        lite.encode_contexts(texts), keras.encode_contexts(texts), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        lite.encode_responses(texts), keras.encode_responses(texts), rtol=1e-5, atol=1e-6
    )
    assert lite.bias == pytest.approx(keras.bias)


def test_the_conversion_keeps_the_version_and_its_indexes(lite_bundle):
    model_dir, index_dir = lite_bundle
    artifact = load_artifact(model_dir)
    info = read_lite_info(model_dir / LITE_INFO)
    assert info["batch_sizes"] == list(LITE_BATCHES) and info["weights"] == artifact.checksum
    assert artifact.has_lite and artifact.version == VERSIONS[model_dir]
    Ranker.load(model_dir, index_dir, runtime="lite")  # the index still fits the model


def test_a_hierarchical_model_converts(tmp_path):
    config = tiny_config(hierarchical=True, max_turns=3, max_turn_tokens=4)
    model_dir = tiny_artifact(tmp_path / "model", config, seed=2)
    export_lite(model_dir, batches=(1, 2, 4))
    artifact = load_artifact(model_dir)
    texts = ["hello __eou__ __eot__ how are you __eou__ __eot__ fine", "hi", "bye __eot__ see"]
    np.testing.assert_allclose(
        artifact.lite_encoder().encode_contexts(texts),
        artifact.encoder().encode_contexts(texts),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_ranker_on_lite_ranks_as_on_tensorflow(lite_bundle):
    contexts = [["hello, how are you?"], ["what is your name?", "my name is bot"], ["bye"]]
    lite = Ranker.load(*lite_bundle, runtime="lite").respond(contexts, k=3)
    tensorflow = Ranker.load(*lite_bundle, runtime="tensorflow").respond(contexts, k=3)
    assert [[h.text for h in row] for row in lite] == [[h.text for h in row] for row in tensorflow]
    for a, b in zip(lite, tensorflow, strict=True):
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_serving_on_lite_never_imports_tensorflow(lite_bundle):
    model_dir, index_dir = lite_bundle
    script = f"""
import sys
from chatbot.ranker import Ranker
ranker = Ranker.load({str(model_dir)!r}, {str(index_dir)!r})  # auto: no GPU here
ranker.warm_up(4)
assert ranker.respond([["hello there"]], k=2)[0], "no reply"
ranker.rank_candidates(["hi"], ["fine thanks", "bye"], k=1)
print(type(ranker.scorer.encoder).__name__, sorted(m for m in sys.modules if m.split(".")[0]
      in ("tensorflow", "keras")))
"""
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "LiteEncoder []"


def test_runtime_lite_needs_a_converted_artifact(tmp_path):
    model_dir = tiny_artifact(tmp_path / "model")
    assert serving_runtime("auto", model_dir) == "tensorflow"
    with pytest.raises(ArtifactError, match="chatbot lite --model"):
        serving_runtime("lite", model_dir)
    with pytest.raises(ArtifactError, match=r"has no encoder\.tflite"):
        load_artifact(model_dir).lite_encoder()
    with pytest.raises(ValueError, match="unknown runtime"):
        serving_runtime("onnx", model_dir)


def test_a_damaged_flatbuffer_is_reported(lite_bundle, tmp_path):
    model_dir = shutil.copytree(lite_bundle[0], tmp_path / "model")
    blob = bytearray((model_dir / LITE_MODEL).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (model_dir / LITE_MODEL).write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=r"encoder\.tflite is damaged"):
        load_artifact(model_dir, network=False)


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"weights": "0" * 64}, "converted from other weights"), ({"dim": 7}, "vectors of 7")],
)
def test_a_conversion_that_does_not_fit_the_model_is_refused(lite_bundle, tmp_path, change, reason):
    model_dir = shutil.copytree(lite_bundle[0], tmp_path / "model")
    info = {**json.loads((model_dir / LITE_INFO).read_text()), **change}
    rewrite_files(model_dir, {LITE_INFO: lambda f: f.write_text(json.dumps(info))})
    with pytest.raises(ArtifactError, match=reason):
        load_artifact(model_dir, network=False).lite_encoder()


@pytest.mark.parametrize(
    ("batches", "reason"), [([1, 3], "powers of two"), ([2, 4], "powers of two"), ([], "powers")]
)
def test_bad_batch_sizes_are_named(lite_bundle, tmp_path, batches, reason):
    model_dir = shutil.copytree(lite_bundle[0], tmp_path / "model")
    info = {**json.loads((model_dir / LITE_INFO).read_text()), "batch_sizes": batches}
    rewrite_files(model_dir, {LITE_INFO: lambda f: f.write_text(json.dumps(info))})
    with pytest.raises(ArtifactError, match=f"encoder_lite.json: .*{reason}"):
        load_artifact(model_dir, network=False).lite_encoder()


def test_the_cli_names_a_folder_that_is_no_artifact(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chatbot_cli", "lite", "--model", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert f"error: {tmp_path / 'none'}: no model artifact here" in done.stderr
    assert "Traceback" not in done.stderr
