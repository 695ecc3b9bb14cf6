"""The TF-IDF part of the hybrid score: weights by hand, artifact/index round trips, ranking."""

import dataclasses
import json
import math

import numpy as np
import pytest

from chatbot.artifact import LEXICAL, ArtifactError, load_artifact, save_artifact
from chatbot.encoder import TextEncoder
from chatbot.index import IndexLoadError, load_index, save_index
from chatbot.lexical import TfidfModel, rowwise_dot
from chatbot.ranker import Ranker
from chatbot.scoring import Scorer
from tests.helpers import tiny_config, tiny_model, tiny_vocab

# Two documents "a b" and "a c": n = 2, df(a) = 2, df(b) = df(c) = 1, so
#   idf(a) = ln(3/3) + 1 = 1,   idf(b) = idf(c) = ln(3/2) + 1 = 1.4054651
IDF_B = math.log(1.5) + 1


def test_fit_idf_by_hand():
    model = TfidfModel.fit(["a b", "a c"])
    assert model.words == ["a", "b", "c"]
    np.testing.assert_allclose(model.idf, [1.0, IDF_B, IDF_B])


def test_fit_min_df_drops_rare_words():
    assert TfidfModel.fit(["a b", "a c"], min_df=2).words == ["a"]


def test_transform_by_hand():
    model = TfidfModel.fit(["a b", "a c"])
    # "a b a": tf(a) = 2, tf(b) = 1 -> weights (2, 1.4054651), norm sqrt(4 + 1.9753321) = 2.4444513
    row = model.transform(["a b a"]).toarray()[0]
    np.testing.assert_allclose(row, [2 / 2.4444513, IDF_B / 2.4444513, 0.0], rtol=1e-6)
    np.testing.assert_allclose(row, [0.8181798, 0.5749618, 0.0], rtol=1e-6)


def test_sublinear_tf_by_hand():
    model = TfidfModel.fit(["a b", "a c"], sublinear_tf=True)
    # tf(a) = 1 + ln 2 = 1.6931472 -> weights (1.6931472, 1.4054651), norm 2.2004724
    row = model.transform(["a b a"]).toarray()[0]
    np.testing.assert_allclose(row, [1.6931472 / 2.2004724, IDF_B / 2.2004724, 0.0], rtol=1e-6)


def test_cosine_by_hand():
    model = TfidfModel.fit(["a b", "a c"])
    # "a b" = (1, 1.405, 0) / 1.7249151 and "a c" = (1, 0, 1.405) / 1.7249151: they share "a"
    # only, so the cosine is 1 / 1.7249151**2 = 1 / 2.9753321 = 0.3360969.
    scores = model.pair_scores(["a b", "a b", "b"], ["a c", "b a", "c"])
    np.testing.assert_allclose(scores, [0.3360969, 1.0, 0.0], rtol=1e-6)


def test_markers_and_unknown_words_are_ignored():
    model = TfidfModel.fit(["a b __eou__", "a c __eou__ __eot__"])
    assert "__eou__" not in model.words
    np.testing.assert_allclose(model.transform(["a __eou__ zebra"]).toarray(), [[1.0, 0, 0]])
    assert model.transform([""]).nnz == 0  # an empty text is a zero row: cosine 0


def test_matches_scikit_learn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    docs = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(200)]
    for sublinear in (False, True):
        ours = TfidfModel.fit(docs, sublinear_tf=sublinear)
        theirs = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=sublinear)
        expected = theirs.fit_transform(docs).toarray()
        assert ours.words == list(theirs.get_feature_names_out())
        np.testing.assert_allclose(ours.transform(docs).toarray(), expected, atol=1e-6)


def test_save_load_round_trip(tmp_path):
    model = TfidfModel.fit(["a b", "a c"], sublinear_tf=True)
    model.save(tmp_path / "lex.json")
    again = TfidfModel.load(tmp_path / "lex.json")
    assert again.words == model.words and again.sublinear_tf
    np.testing.assert_allclose(again.idf, model.idf)
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "bm25"}))
    with pytest.raises(ValueError, match="bm25"):
        TfidfModel.load(tmp_path / "bad.json")


def test_rowwise_dot():
    model = TfidfModel.fit(["a b", "a c"])
    m = model.transform(["a", "b", "c"])
    np.testing.assert_allclose(rowwise_dot(m, m), [1.0, 1.0, 1.0])


# --- the hybrid model: artifact, encoder, evaluation, index and ranker -----------------------

HYBRID_WEIGHT = 100.0  # large enough that the lexical cosine decides the order


def _lexical() -> TfidfModel:
    return TfidfModel.fit(["hello how are you", "my name is bot", "good morning", "see you later"])


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid")
    config = tiny_config(lexical_weight=HYBRID_WEIGHT)
    save_artifact(root / "model", tiny_model(config), tiny_vocab(), config, lexical=_lexical())
    return load_artifact(root / "model")


def test_hybrid_needs_its_lexical_model(tmp_path):
    config = tiny_config(lexical_weight=1.0)
    with pytest.raises(ValueError, match="lexical"):
        save_artifact(tmp_path / "m", tiny_model(config), tiny_vocab(), config)
    encoder = TextEncoder(tiny_model(config), tiny_vocab(), config)
    with pytest.raises(ValueError, match="lexical"):
        Scorer(encoder, None, lexical_weight=1.0)
    with pytest.raises(ValueError, match="lexical_weight"):
        tiny_config(lexical_weight=-1.0)


def test_hybrid_artifact_round_trip_and_checksum(hybrid, tmp_path):
    import shutil

    assert LEXICAL in hybrid.manifest["files"]
    assert hybrid.lexical is not None and hybrid.lexical.words == _lexical().words
    assert hybrid.scorer().lexical_weight == HYBRID_WEIGHT and hybrid.scorer().is_hybrid
    copy = shutil.copytree(hybrid.path, tmp_path / "m")
    (copy / LEXICAL).write_text('{"kind": "tfidf", "words": [], "idf": []}\n')
    with pytest.raises(ArtifactError, match=r"lexical\.json is damaged"):
        load_artifact(copy)


def test_plain_model_has_no_lexical_part(tmp_path):
    config = tiny_config()
    artifact = load_artifact(
        save_artifact(tmp_path / "m", tiny_model(config), tiny_vocab(), config)
    )
    scorer = artifact.scorer()
    assert artifact.lexical is None and not scorer.is_hybrid
    parts = scorer.parts(["hi __eou__ __eot__"], [["hi __eou__", "bye __eou__"]])
    np.testing.assert_array_equal(parts.cosine, [[0.0, 0.0]])
    np.testing.assert_allclose(
        scorer.pair_scores(["hi __eou__ __eot__"], [["hi __eou__", "bye __eou__"]]),
        parts.neural + scorer.bias,
    )


def test_scorer_adds_the_weighted_cosine(hybrid):
    scorer = hybrid.scorer()
    context, responses = "good morning __eou__ __eot__", ["good morning __eou__", "bye"]
    cosine = _lexical().pair_scores([context] * 2, responses)
    assert cosine[0] == pytest.approx(1.0) and cosine[1] == 0.0
    parts = scorer.parts([context], [responses])
    np.testing.assert_allclose(parts.cosine, [cosine], rtol=1e-6)
    np.testing.assert_allclose(
        scorer.pair_scores([context], [responses]),
        parts.neural + scorer.bias + HYBRID_WEIGHT * cosine,
        rtol=1e-5,
    )


def test_evaluation_scores_include_the_lexical_part(hybrid):
    from training.evaluate import model_scores
    from training.sources.udc_csv import EvalRow

    rows = [
        EvalRow("good morning __eou__ __eot__", "good morning __eou__", ("my name __eou__",)),
        EvalRow("my name is __eou__ __eot__", "is bot __eou__", ("see you __eou__",)),
    ]
    hybrid_scores = model_scores(rows, hybrid.scorer(jit_compile=False), progress=False)
    neural = model_scores(rows, Scorer(hybrid.encoder(jit_compile=False)), progress=False)
    cosine = np.array([_lexical().pair_scores([r.context] * 2, list(r.candidates)) for r in rows])
    np.testing.assert_allclose(hybrid_scores, neural + HYBRID_WEIGHT * cosine, rtol=1e-5)


def test_hybrid_index_and_ranker(hybrid, tmp_path):
    encoder = hybrid.encoder()
    texts = ["Good morning!", "My name is Bot.", "See you later.", "Fine, thanks."]
    normalized = [encoder.normalizer.response(t) for t in texts]
    vectors = encoder.encode_responses(normalized)
    with pytest.raises(ValueError, match="lexical"):
        save_index(tmp_path / "plain", vectors, texts, hybrid)
    lexical_rows = hybrid.lexical.transform(normalized)
    save_index(tmp_path / "index", vectors, texts, hybrid, lexical=lexical_rows)
    assert load_index(tmp_path / "index", hybrid).lexical.shape == (4, len(_lexical()))

    ranker = Ranker.load(hybrid.path, tmp_path / "index")
    hits = ranker.respond([["good morning", "hello"], ["what is your name?", "hi"]], k=2)
    # The lexical term (weight 100) decides: the response sharing the words comes first.
    assert [h[0].text for h in hits] == ["Good morning!", "My name is Bot."]
    # Its score is the same whether ranked over the repository or as a given candidate.
    again = ranker.rank_candidates(["good morning", "hello"], texts, k=4)
    assert again[0].text == "Good morning!"
    assert again[0].score == pytest.approx(hits[0][0].score, rel=1e-5)


def test_hybrid_ranker_never_echoes_the_last_turn(hybrid, tmp_path):
    encoder = hybrid.encoder()
    texts = ["Good morning!", "My name is Bot.", "See you later.", "Fine, thanks."]
    normalized = [encoder.normalizer.response(t) for t in texts]
    save_index(
        tmp_path / "index",
        encoder.encode_responses(normalized),
        texts,
        hybrid,
        lexical=hybrid.lexical.transform(normalized),
    )
    ranker = Ranker.load(hybrid.path, tmp_path / "index")
    # "good morning" restates "Good morning!" (cosine 1 >= ECHO_COSINE): it is left out, though
    # the lexical term would rank it first; the other three remain.
    hits = ranker.respond([["good morning"]], k=4)[0]
    assert sorted(h.text for h in hits) == sorted(texts[1:])


def test_hybrid_model_refuses_an_index_without_lexical_rows(hybrid, tmp_path):
    plain = dataclasses.replace(hybrid, config=dataclasses.replace(hybrid.config, lexical_weight=0))
    encoder = hybrid.encoder()
    vectors = encoder.encode_responses(["hi __eou__"])
    save_index(tmp_path / "index", vectors, ["hi"], plain)
    with pytest.raises(IndexLoadError, match="lexical"):
        load_index(tmp_path / "index", hybrid)
