import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.index import IndexLoadError, load_index, save_index
from chatbot.ranker import Ranker
from chatbot.search import BACKENDS, make_backend, top_k_rows
from tests.helpers import tiny_artifact, tiny_config


def test_top_k_rows_by_hand():
    scores = np.array([[0.1, 0.9, 0.5], [3.0, 1.0, 2.0]])
    values, ids = top_k_rows(scores, 2)
    assert ids.tolist() == [[1, 2], [0, 2]]
    np.testing.assert_allclose(values, [[0.9, 0.5], [3.0, 2.0]])


@pytest.mark.parametrize("backend", ["exact", "numpy", "faiss-flat", "faiss-hnsw"])
def test_backends_agree_with_brute_force(backend):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype("float32")
    queries = rng.normal(size=(4, 16)).astype("float32")
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    scores, ids = make_backend(backend, vectors).search(queries, 5)
    assert ids.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), rtol=1e-3)


def test_ivf_backend_finds_the_best_match_of_its_own_vectors():
    vectors = np.random.default_rng(1).normal(size=(2000, 16)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _, ids = make_backend("faiss-ivf", vectors).search(vectors[:20], 1)
    assert (ids[:, 0] == np.arange(20)).mean() >= 0.9


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown search backend"):
        make_backend("annoy", np.zeros((2, 2), "float32"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_listed_backend_can_be_made(backend):
    vectors = np.random.default_rng(2).normal(size=(64, 4)).astype("float32")
    _, ids = make_backend(backend, vectors).search(vectors[:1], 1)
    assert ids.shape == (1, 1)


@pytest.fixture(scope="module")
def model_and_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("r")
    artifact = load_artifact(tiny_artifact(root / "model"))
    texts = ["Hello there!", "I am fine, thanks.", "My name is Bot.", "Good morning!"]
    encoder = artifact.encoder()
    vectors = encoder.encode_responses([encoder.normalizer.response(t) for t in texts])
    save_index(root / "index", vectors, texts, artifact)
    return root / "model", root / "index", texts


def test_ranker_returns_k_hits_best_first(model_and_index):
    model_dir, index_dir, texts = model_and_index
    ranker = Ranker.load(model_dir, index_dir)
    hits = ranker.respond([["Hi, how are you?"], ["What is your name?", "Bot."]], k=3)
    assert [len(h) for h in hits] == [3, 3]
    for row in hits:
        assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)
        assert all(h.text in texts for h in row)
    # The repository answer and the same text ranked as a candidate get the same score.
    best = hits[0][0]
    again = ranker.rank_candidates(["Hi, how are you?"], [best.text, "unrelated"], k=2)
    assert any(abs(h.score - best.score) < 1e-4 and h.text == best.text for h in again)


def test_ranker_never_repeats_a_turn_of_the_conversation(model_and_index):
    model_dir, index_dir, texts = model_and_index
    ranker = Ranker.load(model_dir, index_dir)
    first = ranker.respond([["Hi, how are you?"]], k=1)[0][0].text
    # The widget sends the bot's own reply back as a turn: it must not come again.
    hits = ranker.respond([["Hi, how are you?", f" {first} ", "And you?"]], k=len(texts))[0]
    assert first not in [h.text for h in hits]
    assert sorted(h.text for h in hits) == sorted(t for t in texts if t != first)


def test_index_of_another_model_is_refused(model_and_index, tmp_path):
    _, index_dir, _ = model_and_index
    other = load_artifact(tiny_artifact(tmp_path / "other", seed=7))
    with pytest.raises(IndexLoadError, match="built by model"):
        load_index(index_dir, other)


def test_damaged_index_is_reported(model_and_index, tmp_path):
    import shutil

    _, index_dir, _ = model_and_index
    copy = shutil.copytree(index_dir, tmp_path / "idx")
    (copy / "texts.jsonl").write_text('"tampered"\n')
    with pytest.raises(IndexLoadError, match=r"texts.jsonl is damaged"):
        load_index(copy)


def test_warm_up_compiles_every_shape_a_batch_can_meet(tmp_path):
    # Contexts of up to 40 tokens: length buckets 16 and 32, then the cap.
    artifact = load_artifact(tiny_artifact(tmp_path / "m", tiny_config(max_context_tokens=40)))
    encoder = artifact.encoder()
    vectors = encoder.encode_responses(["hi __eou__", "bye __eou__", "fine __eou__"])
    save_index(tmp_path / "i", vectors, ["Hi", "Bye", "Fine"], artifact)
    ranker = Ranker.load(tmp_path / "m", tmp_path / "i")
    encoder = ranker.scorer.encoder
    compiled = encoder._contexts
    seen: set[tuple[int, int]] = set()

    def recording(ids):
        seen.add(tuple(ids.shape))
        return compiled(ids)

    encoder._contexts = recording
    ranker.warm_up(max_batch_size=6)
    warmed = set(seen)
    assert warmed == encoder.context_shapes(6)

    # Any batch of up to 6 contexts, of any length, meets a warmed shape.
    seen.clear()
    for n in range(1, 7):
        for words in (1, 9, 20, 35, 80):
            ranker.respond([["hello " * words]] * n, k=2)
    assert {length for _, length in seen} == {16, 32, 40}
    assert seen <= warmed
