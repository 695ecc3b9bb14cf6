"""The one hybrid score: repository ranking against brute force, and tuning on the neural part."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact, save_artifact
from chatbot.index import load_index, save_index
from chatbot.lexical import TfidfModel
from chatbot.postings import Postings
from chatbot.scoring import ScoreParts, Scorer, _best_unechoed, hybrid_score
from chatbot.search import make_backend
from chatbot.timing import StageTimes
from tests.helpers import WORDS, tiny_config, tiny_model, tiny_vocab

WEIGHT = 3.0


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 5))) + " __eou__" for _ in range(n)]


def _contexts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` one-turn contexts and their last turns."""
    contexts = [t.replace("__eou__", "__eou__ __eot__") for t in _texts(n, seed)]
    return contexts, [c.split(" __eou__")[0] for c in contexts]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("scoring")
    responses = sorted(set(_texts(60, seed=1)))
    lexical = TfidfModel.fit(responses)
    config = tiny_config(lexical_weight=WEIGHT)
    save_artifact(root / "model", tiny_model(config), tiny_vocab(), config, lexical=lexical)
    artifact = load_artifact(root / "model")
    vectors = artifact.encoder().encode_responses(responses)
    save_index(root / "index", vectors, responses, artifact, lexical=lexical.transform(responses))
    return artifact, load_index(root / "index", artifact)


def test_hybrid_score_is_neural_plus_bias_plus_weighted_cosine() -> None:
    neural, cosine = np.array([[2.0, -1.0]]), np.array([[0.5, 1.0]])
    # 2 + (-1) + 4 * 0.5 = 3; -1 - 1 + 4 * 1 = 2
    assert hybrid_score(neural, cosine, weight=4.0, bias=-1.0).tolist() == [[3.0, 2.0]]
    assert ScoreParts(neural, cosine, bias=-1.0).combined(4.0).tolist() == [[3.0, 2.0]]


@pytest.mark.parametrize("depth", [4, 1000])
def test_repository_ranking_matches_brute_force(hybrid, depth: int) -> None:
    artifact, index = hybrid
    scorer = Scorer(
        artifact.encoder(), artifact.lexical, WEIGHT, rerank_depth=depth, lexical_depth=depth
    )
    contexts = [t.replace("__eou__", "__eou__ __eot__") for t in _texts(8, seed=2)]
    last_turns = [c.split(" __eou__")[0] for c in contexts]
    ranked = scorer.rank(contexts, last_turns, index, make_backend("numpy", index.vectors), k=5)

    full = scorer.pair_scores(contexts, [index.texts] * len(contexts))  # (8, N) exact scores
    echo = artifact.lexical.transform(last_turns) @ index.lexical.T  # (8, N) cosines
    for i, row in enumerate(ranked):
        allowed = np.flatnonzero(echo[i].toarray()[0] < scorer.echo_cosine)
        ids = [r for r, _ in row]
        assert set(ids) <= set(allowed.tolist())  # no restatement of the last turn
        np.testing.assert_allclose([s for _, s in row], full[i, ids], rtol=1e-5, atol=1e-5)
        if depth >= len(index):  # every response is re-scored: exactly the brute-force top 5
            best = allowed[np.argsort(-full[i, allowed], kind="stable")[:5]]
            np.testing.assert_allclose(full[i, ids], full[i, best], rtol=1e-5, atol=1e-5)


def test_the_lexical_search_runs_beside_the_encoder(hybrid, monkeypatch) -> None:
    # Each side waits for the other at a barrier: run one after the other, both would time out.
    artifact, index = hybrid
    scorer = Scorer(artifact.encoder(), artifact.lexical, WEIGHT)
    backend = make_backend("numpy", index.vectors)
    contexts = [t.replace("__eou__", "__eou__ __eot__") for t in _texts(4, seed=5)]
    last_turns = [c.split(" __eou__")[0] for c in contexts]
    expected = scorer.rank(contexts, last_turns, index, backend, k=5)
    meet = threading.Barrier(2, timeout=10)
    threads: dict[str, str] = {}
    encode, top = scorer.encoder.encode_contexts, Postings.top

    def encode_at_barrier(texts):
        meet.wait()
        threads["encode"] = threading.current_thread().name
        return encode(texts)

    def top_at_barrier(self, *args, **kwargs):
        if "lexical" not in threads:
            meet.wait()
        threads["lexical"] = threading.current_thread().name
        return top(self, *args, **kwargs)

    monkeypatch.setattr(scorer.encoder, "encode_contexts", encode_at_barrier)
    monkeypatch.setattr(Postings, "top", top_at_barrier)
    times = StageTimes()
    assert scorer.rank(contexts, last_turns, index, backend, k=5, times=times) == expected
    assert threads["encode"] == threading.current_thread().name != threads["lexical"]
    assert {"encode", "neural search", "lexical search", "fusion and filters"} <= set(times.seconds)


def test_an_error_of_either_side_of_the_ranking_reaches_the_caller(hybrid, monkeypatch) -> None:
    artifact, index = hybrid
    scorer = Scorer(artifact.encoder(), artifact.lexical, WEIGHT)
    backend = make_backend("numpy", index.vectors)
    contexts, last_turns = ["a b __eou__ __eot__"], ["a b"]

    def broken(*args, **kwargs):
        raise RuntimeError("lexical side broke")

    with monkeypatch.context() as patch:
        patch.setattr(Postings, "top", broken)
        with pytest.raises(RuntimeError, match="lexical side broke"):
            scorer.rank(contexts, last_turns, index, backend, k=3)
    lexical_done = threading.Event()
    top = Postings.top

    def slow_top(self, *args, **kwargs):
        time.sleep(0.2)  # still running when the encoder fails
        lexical_done.set()
        return top(self, *args, **kwargs)

    def broken_encode(texts):
        raise ValueError("encoder broke")

    monkeypatch.setattr(Postings, "top", slow_top)
    monkeypatch.setattr(scorer.encoder, "encode_contexts", broken_encode)
    with pytest.raises(ValueError, match="encoder broke"):
        scorer.rank(contexts, last_turns, index, backend, k=3)
    assert lexical_done.is_set()  # the caller got its error once the other side was done


def test_retuning_a_hybrid_model_tunes_on_its_neural_part(tmp_path: Path) -> None:
    from chatbot.model import build_dual_encoder
    from training.dataset import build_vocab
    from training.hybrid import add_lexical
    from training.synthetic import write_synthetic_udc

    data = write_synthetic_udc(tmp_path / "data", n_train=200, n_valid=40, n_test=1, seed=3)
    config = tiny_config(vocab_size=500, normalization="udc")
    vocab = build_vocab(data / "train.csv", config)
    save_artifact(tmp_path / "m", build_dual_encoder(config, len(vocab)), vocab, config)
    valid = {"valid": data / "valid.csv"}
    first = add_lexical(tmp_path / "m", data / "train.csv", valid, name="t")
    assert first["lexical_weight"] > 0  # the topic words make TF-IDF worth something
    assert load_artifact(tmp_path / "m").config.lexical_weight == first["lexical_weight"]
    second = add_lexical(tmp_path / "m", data / "train.csv", valid, name="t")
    assert second == first  # the same table: the lexical part is not counted twice


def test_a_plain_model_with_a_tfidf_model_never_echoes_either(hybrid) -> None:
    artifact, index = hybrid
    plain = Scorer(artifact.encoder(), artifact.lexical, lexical_weight=0.0, echo_cosine=0.7)
    backend = make_backend("numpy", index.vectors)
    # Each context is a repository response: the restatement is the one left out.
    contexts = [t.replace("__eou__", "__eou__ __eot__") for t in index.texts[:6]]
    last_turns = [t.removesuffix(" __eou__") for t in index.texts[:6]]
    ranked = plain.rank(contexts, last_turns, index, backend, k=len(index))
    off = Scorer(artifact.encoder(), artifact.lexical, 0.0, echo_cosine=2.0)
    everything = off.rank(contexts, last_turns, index, backend, k=len(index))
    judge = artifact.lexical.transform(last_turns) @ index.lexical.T  # (6, N) cosines
    for i, (row, full) in enumerate(zip(ranked, everything, strict=True)):
        echoes = {int(j) for j in np.flatnonzero(judge[i].toarray()[0] >= 0.7)}
        assert i in echoes  # its own text
        assert [j for j, _ in row] == [j for j, _ in full if j not in echoes]


@pytest.mark.parametrize("k", [1, 3, 8])
def test_a_hybrid_ranking_leaves_out_restatements(hybrid, k: int) -> None:
    # Each context restates repository texts: their echoes lead its ranking.
    artifact, index = hybrid
    scorer = Scorer(artifact.encoder(), artifact.lexical, WEIGHT, echo_cosine=0.3)
    contexts = [t.replace("__eou__", "__eou__ __eot__") for t in index.texts[:6]]
    last_turns = [t.removesuffix(" __eou__") for t in index.texts[:6]]
    backend = make_backend("numpy", index.vectors)
    ranked = scorer.rank(contexts, last_turns, index, backend, k=k)

    full = scorer.pair_scores(contexts, [index.texts] * len(contexts))
    judge = (artifact.lexical.transform(last_turns) @ index.lexical.T).toarray()
    for i, row in enumerate(ranked):
        allowed = np.flatnonzero(judge[i] < 0.3)
        assert len(allowed) >= k and (judge[i] >= 0.3).sum() > 1  # echoes there to leave out
        best = allowed[np.argsort(-full[i, allowed], kind="stable")[:k]]
        assert {j for j, _ in row} <= set(allowed.tolist())
        np.testing.assert_allclose([s for _, s in row], full[i, best], rtol=1e-5, atol=1e-5)


def test_echoes_are_judged_on_the_head_and_the_tail_only_of_rows_left_short() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 60)).astype(np.float32)
    ids = np.arange(180).reshape(3, 60)
    keep = np.ones((3, 60), dtype=bool)
    keep[2, 50:] = False  # padding
    by_score = np.argsort(-scores, axis=1)
    # Row 0: its 40 best restate the last turn, more than the head of 2k + 16 = 26 holds.
    echoes = set(ids[0, by_score[0, :40]].tolist()) | {int(ids[1, by_score[1, 0]])}
    judged: list[int] = []

    def echo(owner: np.ndarray, found: np.ndarray) -> np.ndarray:
        judged.extend(found.tolist())
        return np.array([j not in echoes for j in found.tolist()])

    best = _best_unechoed(scores, ids, keep.copy(), 5, echo)
    for row, got in enumerate(best):
        allowed = [j for j in np.argsort(-np.where(keep[row], scores[row], -np.inf))
                   if keep[row, j] and ids[row, j] not in echoes][:5]  # fmt: skip
        assert [j for j, _ in got] == ids[row, allowed].tolist()
        np.testing.assert_allclose([x for _, x in got], scores[row, allowed])
    # Each head once (26 a row); past it, only row 0's other 34: rows 1 and 2 had 5 replies.
    assert len(judged) == len(set(judged)) == 26 * 3 + 34


class _BagOfWordsSentences:
    """A stand-in sentence encoder: the normalised sum of a fixed random vector per word."""

    context_turns = 3

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.table = {w: rng.normal(size=6) for w in [*WORDS, "__eou__", "__eot__"]}
        self.calls: list[list[str]] = []

    def encode(self, texts, threads=None, progress=False, query=False) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 6), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i] += self.table.get(word, 0.0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_queries = encode_contexts = encode

    def adapt(self, vectors: np.ndarray) -> np.ndarray:
        return vectors  # no context adapter


@pytest.fixture(scope="module")
def semantic(hybrid, tmp_path_factory: pytest.TempPathFactory):
    """The hybrid fixture's model and index, the index with sentence vectors too."""
    artifact, index = hybrid
    sentences = _BagOfWordsSentences()
    root = tmp_path_factory.mktemp("semantic")
    texts = list(index.texts)
    save_index(
        root / "index",
        np.asarray(index.vectors),
        texts,
        artifact,
        lexical=index.lexical,
        sentence=sentences.encode([" ".join(t.split()[:-1]) for t in texts]),
    )
    return artifact, load_index(root / "index", artifact), sentences


@pytest.mark.parametrize("depth", [4, 1000])
def test_a_ranking_with_the_semantic_part_matches_brute_force(semantic, depth: int) -> None:
    artifact, index, sentences = semantic
    scorer = Scorer(
        artifact.encoder(),
        artifact.lexical,
        WEIGHT,
        rerank_depth=depth,
        lexical_depth=depth,
        sentence=sentences,
        semantic_weight=5.0,
        semantic_depth=depth,
    )
    contexts, last_turns = _contexts(8, seed=4)
    times = StageTimes()
    ranked = scorer.rank(
        contexts, last_turns, index, make_backend("numpy", index.vectors), 5, times
    )
    assert {"sentence encode", "semantic search"} <= set(times.seconds)
    # The exact score of every pair, the semantic part read as the index holds it.
    parts = scorer.parts(contexts, [list(index.texts)] * len(contexts))
    said = sentences.encode(
        [" ".join(c.replace("__eou__", "").split("__eot__")[0].split()) for c in contexts]
    )
    exact = parts.combined(WEIGHT) + 5.0 * said @ np.asarray(index.sentence).T
    echo = (artifact.lexical.transform(last_turns) @ index.lexical.T).toarray()
    for i, row in enumerate(ranked):
        allowed = np.flatnonzero(echo[i] < scorer.echo_cosine)
        ids = [r for r, _ in row]
        assert set(ids) <= set(allowed.tolist())
        np.testing.assert_allclose([s for _, s in row], exact[i, ids], rtol=1e-5, atol=1e-5)
        if depth >= len(index):
            best = allowed[np.argsort(-exact[i, allowed], kind="stable")[:5]]
            np.testing.assert_allclose(exact[i, ids], exact[i, best], rtol=1e-5, atol=1e-5)


def test_a_ranking_of_no_contexts_is_empty(semantic) -> None:
    artifact, index, sentences = semantic
    scorer = Scorer(
        artifact.encoder(), artifact.lexical, WEIGHT, sentence=sentences, semantic_weight=5.0
    )
    assert scorer.rank([], [], index, make_backend("numpy", index.vectors), 5) == []


def test_the_semantic_part_reads_the_raw_turns_when_given(semantic) -> None:
    artifact, index, sentences = semantic
    scorer = Scorer(
        artifact.encoder(), artifact.lexical, WEIGHT, sentence=sentences, semantic_weight=5.0
    )
    backend = make_backend("numpy", index.vectors)
    context = ["hi __eou__ __eot__ fine __eou__ __eot__ hello how are you __eou__ __eot__"]
    last = ["hello how are you"]
    sentences.calls.clear()
    turns = [["Hi!", "Fine.", "Hello, how are YOU?"]]
    scorer.rank(context, last, index, backend, 3, raw_turns=turns)
    # The last three turns, and the last turn alone (for the semantic echo rule), at once.
    assert sentences.calls == [["Hi! Fine. Hello, how are YOU?", "Hello, how are YOU?"]]
    scorer.rank(context, last, index, backend, 3)
    assert sentences.calls[-1] == ["hi fine hello how are you", "hello how are you"]
    # Scoring given candidates (evaluation rows, /rank) reads them as written too.
    sentences.calls.clear()
    scorer.parts(
        context,
        [["fine __eou__", "hi __eou__"]],
        raw_turns=turns,
        raw_candidates=[["Fine!", "Hi."]],
    )
    assert sentences.calls == [["Hi! Fine. Hello, how are YOU?"], ["Fine!", "Hi."]]
    with pytest.raises(ValueError, match="every context and candidate"):
        scorer.parts(
            context, [["fine __eou__", "hi __eou__"]], raw_turns=turns, raw_candidates=[["Fine!"]]
        )


def test_the_semantic_part_moves_the_ranking_only_with_a_weight(semantic) -> None:
    artifact, index, sentences = semantic
    contexts, last_turns = _contexts(16, seed=6)
    backend = make_backend("numpy", index.vectors)

    def top(weight: float) -> list[list[int]]:
        scorer = Scorer(
            artifact.encoder(), artifact.lexical, WEIGHT, sentence=sentences, semantic_weight=weight
        )
        return [[j for j, _ in row] for row in scorer.rank(contexts, last_turns, index, backend, 3)]

    plain = Scorer(artifact.encoder(), artifact.lexical, WEIGHT)
    assert top(0.0) == [
        [j for j, _ in r] for r in plain.rank(contexts, last_turns, index, backend, 3)
    ]
    assert top(200.0) != top(0.0)


def test_a_semantic_weight_needs_its_encoder_and_the_lexical_part(hybrid) -> None:
    artifact, _ = hybrid
    with pytest.raises(ValueError, match="semantic_weight > 0 needs"):
        Scorer(artifact.encoder(), artifact.lexical, WEIGHT, semantic_weight=1.0)
    with pytest.raises(ValueError, match="semantic_weight > 0 needs"):
        Scorer(artifact.encoder(), None, sentence=_BagOfWordsSentences(), semantic_weight=1.0)


def test_an_index_without_sentence_vectors_cannot_serve_the_semantic_part(hybrid) -> None:
    artifact, index = hybrid  # no sentence vectors
    scorer = Scorer(
        artifact.encoder(),
        artifact.lexical,
        WEIGHT,
        sentence=_BagOfWordsSentences(),
        semantic_weight=1.0,
    )
    backend = make_backend("numpy", index.vectors)
    with pytest.raises(ValueError, match="needs an index with sentence vectors"):
        scorer.rank(["hello __eou__ __eot__"], ["hello"], index, backend, 3)


def test_the_semantic_echo_rule_leaves_out_restatements_in_other_words(semantic) -> None:
    artifact, index, sentences = semantic
    contexts, last_turns = _contexts(8, seed=8)
    backend = make_backend("numpy", index.vectors)

    def ranked(threshold: float) -> list[list[int]]:
        scorer = Scorer(
            artifact.encoder(),
            artifact.lexical,
            WEIGHT,
            sentence=sentences,
            semantic_weight=5.0,
            semantic_echo_cosine=threshold,
            rerank_depth=1000,
            lexical_depth=1000,
            semantic_depth=1000,
        )
        rows = scorer.rank(contexts, last_turns, index, backend, k=len(index))
        return [[j for j, _ in row] for row in rows]

    close = sentences.encode(last_turns) @ np.asarray(index.sentence).T  # (8, N)
    off, on = ranked(2.0), ranked(0.6)
    assert sum(len(row) for row in on) < sum(len(row) for row in off)  # something left out
    for i, (full, kept) in enumerate(zip(off, on, strict=True)):
        assert kept == [j for j in full if close[i, j] < 0.6]  # the same order, less the close
