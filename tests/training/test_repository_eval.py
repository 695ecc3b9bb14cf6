"""The repository evaluation with a fake bag-of-words model, expected figures worked out by hand."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from chatbot.index import ResponseIndex
from chatbot.scoring import Scorer
from chatbot.text import Normalizer
from training.repository_eval import evaluate_repository, weight_table
from training.sources.udc_csv import EvalRow

VOCAB = ("wifi", "driver", "sound", "card", "ubuntu")
REPO = ["wifi driver __eou__", "wifi __eou__", "sound card __eou__", "ubuntu __eou__", "ok __eou__"]


class BagOfWords:
    """Score = number of vocabulary words shared."""

    bias = 0.0

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[t.split().count(w) for w in VOCAB] for t in texts], dtype=np.float32)

    encode_contexts = encode_responses = _vectors


ROWS = [
    # true "wifi driver" scores 2, its own repository copy is left out, nothing else
    # reaches 2                                                                  -> rank 1
    EvalRow("wifi driver __eou__ __eot__", "wifi driver __eou__", ()),
    # true "ubuntu" scores 0; its copy is left out, the other 4 tie or beat it   -> rank 5
    EvalRow("sound card __eou__ __eot__", "ubuntu __eou__", ()),
    # true "wifi driver" scores 1; its copy is left out, "wifi" ties it          -> rank 2
    EvalRow("wifi __eou__ __eot__", "wifi driver __eou__", ()),
]
# Ranks 1, 5, 2: R@1 1/3, R@10 1, MRR (1 + 1/5 + 1/2) / 3, median 2.
# 1 in 100 (here all 4 other responses, one repeated): only row 1 has no distractor >= it.
# Served top-1 replies: "wifi driver", "sound card", then "wifi driver" or "wifi" (a tie):
# each restates the last turn (TF-IDF cosine >= 0.5), so the echo rate is 1. The true replies:
# row 1 is the last turn itself, row 2 shares no word, row 3 ("wifi driver" after "wifi")
# has cosine idf(wifi) / |(idf(wifi), idf(driver))| = 1.69 / 2.70 = 0.63: 2 of 3 echo.


@pytest.fixture
def report() -> dict:
    vectors = BagOfWords().encode_responses(REPO)
    index = ResponseIndex(vectors, [t.removesuffix(" __eou__") for t in REPO], {}, None, REPO)
    return evaluate_repository(ROWS, Scorer(BagOfWords()), index, Normalizer("none"))


def test_ranks_against_the_whole_repository_by_hand(report: dict) -> None:
    model = report["systems"]["model"]
    assert model["recall@1"] == pytest.approx(1 / 3)
    assert model["recall@10"] == model["recall@100"] == 1.0
    assert model["mrr"] == pytest.approx((1 + 1 / 5 + 1 / 2) / 3)
    assert model["median_rank"] == 2.0
    assert model["recall@1_of_100"] == pytest.approx(1 / 3)
    assert (report["n"], report["repository_size"], report["true_in_repository"]) == (3, 5, 1.0)


def test_the_weight_table_ranks_as_the_evaluation_does() -> None:
    vectors = BagOfWords().encode_responses(REPO)
    index = ResponseIndex(vectors, [t.removesuffix(" __eou__") for t in REPO], {}, None, REPO)
    (row,) = weight_table(ROWS, Scorer(BagOfWords()), index, Normalizer("none"), [0.0], False)
    # No TF-IDF part, so any weight gives the neural ranks worked out above: 1, 5, 2.
    assert row["weight"] == 0.0
    assert row["recall@1"] == pytest.approx(1 / 3)
    assert row["mrr"] == pytest.approx((1 + 1 / 5 + 1 / 2) / 3)
    assert row["median_rank"] == 2.0


def test_echo_and_question_rates_by_hand(report: dict) -> None:
    assert report["systems"]["model"]["echo_rate"] == 1.0
    assert report["true_responses"]["echo_rate"] == pytest.approx(2 / 3)
    assert report["systems"]["model"]["question_rate"] == 0.0


def test_tfidf_baseline_is_reported_beside_the_model(report: dict) -> None:
    assert list(report["systems"]) == ["model", "tfidf"]
    # TF-IDF puts "wifi driver" first for row 1 (its copy left out: rank 1 of the rest).
    assert report["systems"]["tfidf"]["recall@100"] == 1.0
    assert 0 < report["systems"]["tfidf"]["mrr"] <= 1


def test_the_distractors_follow_the_seed() -> None:
    # One dimension: response i scores i / 300, every true response 0.99, above all but the
    # top 3 of the repository. It wins 1 in 100 when none of those 3 is among its 99
    # distractors (about (201/300)^3 = 0.3 of the time), so the share depends on the draw.
    class Line(BagOfWords):
        def encode_contexts(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), 1), dtype=np.float32)

        def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
            values = [0.99 if t[0] == "t" else int(t.split()[0][1:]) / 300 for t in texts]
            return np.array(values, dtype=np.float32)[:, None]

    texts = [f"r{i} __eou__" for i in range(300)]
    index = ResponseIndex(Line().encode_responses(texts), texts, {}, None, texts)
    rows = [EvalRow(f"c{i} __eou__ __eot__", f"t{i} __eou__", ()) for i in range(40)]

    def one_in_100(seed: int) -> float:
        report = evaluate_repository(rows, Scorer(Line()), index, Normalizer("none"), (), seed)
        assert report["systems"]["model"]["median_rank"] == 4.0  # 3 above it, always
        return report["systems"]["model"]["recall@1_of_100"]

    shares = [one_in_100(seed) for seed in range(4)]
    assert one_in_100(1) == shares[1]
    assert len(set(shares)) > 1 and all(0.05 < s < 0.7 for s in shares)


def test_served_ranking_is_compared_with_the_exact_top_10(report: dict) -> None:
    # Five responses: the served ranking re-scores all of them, so it keeps the exact top.
    assert report["systems"]["model"]["served_recall@10_of_exact"] == 1.0


def test_a_served_ranking_returning_one_response_keeps_one_fifth_of_five() -> None:
    class ServesOnlyTheWorst(Scorer):
        def rank(self, contexts, last_turns, repository, backend, k, times=None, raw_turns=None):
            exact = super().rank(contexts, last_turns, repository, backend, len(repository))
            return [row[-1:] for row in exact]  # the single worst response

    vectors = BagOfWords().encode_responses(REPO)
    index = ResponseIndex(vectors, REPO, {}, None, REPO)
    rows = [EvalRow("wifi driver __eou__ __eot__", "wifi __eou__", ())]
    worst = ServesOnlyTheWorst(BagOfWords())
    model = evaluate_repository(rows, worst, index, Normalizer("none"))["systems"]["model"]
    # Five responses, so the exact "top 10" is all five; one of them was served.
    assert model["served_recall@10_of_exact"] == pytest.approx(0.2)


class Zero:
    """A neural part that says nothing: every pair scores 0."""

    bias = 0.0

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 2), dtype=np.float32)

    encode_contexts = encode_responses = _vectors


class Synonyms:
    """A stand-in sentence encoder that knows "wlan" means "wifi" (TF-IDF does not)."""

    context_turns = 3

    def encode(self, texts, threads=None, progress=False, query=False) -> np.ndarray:
        words = [[{"wlan": "wifi"}.get(w, w) for w in t.lower().split()] for t in texts]
        out = np.array([[ws.count(v) for v in VOCAB] for ws in words], dtype=np.float32) + 0.1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    encode_queries = encode_contexts = encode

    def adapt(self, vectors: np.ndarray) -> np.ndarray:
        return vectors  # no context adapter


def _semantic_repository() -> tuple[ResponseIndex, Scorer, Synonyms]:
    """REPO with :class:`Synonyms` sentence vectors, and a scorer of the semantic part alone."""
    from chatbot.lexical import TfidfModel

    shown = [t.removesuffix(" __eou__") for t in REPO]
    sentences = Synonyms()
    index = ResponseIndex(
        Zero().encode_responses(REPO),
        shown,
        {},
        TfidfModel.fit(REPO).transform(REPO),
        REPO,
        sentence=sentences.encode(shown),
    )
    scorer = Scorer(
        Zero(), TfidfModel.fit(REPO), 0.0, echo_cosine=2.0, sentence=sentences, semantic_weight=1.0
    )
    return index, scorer, sentences


def test_the_semantic_part_is_ranked_with_the_repository_s_own_sentence_vectors() -> None:
    index, scorer, sentences = _semantic_repository()
    rows = [
        EvalRow("wlan driver __eou__ __eot__", "wifi driver __eou__", ()),
        EvalRow("my wlan __eou__ __eot__", "sound card __eou__", ()),
    ]
    report = evaluate_repository(rows, scorer, index, Normalizer("none"), baselines=())
    # By hand: the contexts' cosines with every repository text, the true reply's own row
    # (0 and 2) left out of what can beat it.
    said = sentences.encode(["wlan driver", "my wlan"])
    cosines = said @ index.sentence.T
    ranks = [1 + int(np.sum(np.delete(c, t) >= c[t])) for c, t in zip(cosines, (0, 2), strict=True)]
    # "wifi driver" is the semantic part's best for "wlan driver"; every other text is closer
    # to "my wlan" than "sound card" is.
    assert ranks == [1, 5]
    for name in ("model", "model_semantic"):  # the neural and lexical parts add nothing here
        assert report["systems"][name]["mrr"] == pytest.approx(np.mean([1 / r for r in ranks]))
    assert report["systems"]["model_neural"]["median_rank"] == 5.0  # all tie: ties count against


def test_the_sentence_encoder_reads_a_row_s_raw_text_when_it_was_kept() -> None:
    from training.raw_text import RawText

    index, scorer, _ = _semantic_repository()
    # The normalised context shares no word with anything; as written, it asks about wlan.
    normalised = EvalRow("zzz __eou__ __eot__", "wifi driver __eou__", ())
    raw = RawText(("Hello", "My WLAN driver"), ("wifi driver",))
    ranks = {}
    for name, row in (
        ("normalised", normalised),
        ("raw", dataclasses.replace(normalised, raw=raw)),
    ):
        report = evaluate_repository([row], scorer, index, Normalizer("none"), baselines=())
        ranks[name] = report["systems"]["model_semantic"]["median_rank"]
    assert ranks["raw"] == 1.0  # "wifi driver" is what "my wlan driver" means
    assert ranks["normalised"] == 3.0  # "zzz" is nearer to the one-word replies
