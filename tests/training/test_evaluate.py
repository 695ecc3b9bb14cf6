"""The evaluation job with a fake bag-of-words encoder whose results are worked out by hand."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from chatbot.scoring import Scorer
from training.evaluate import METRICS, evaluate, model_scores, run_evaluation
from training.sources.udc_csv import EvalRow

VOCAB = ("wifi", "driver", "sound", "card", "ubuntu")
F = ("thanks", "ok", "lol", "hello", "bye", "yes")  # no vocabulary word: zero vectors

# Score = number of vocabulary words shared (bag-of-words dot product).
ROWS = [
    # true "wifi driver" scores 2; "wifi" 1, "driver" 1, the rest 0      -> rank 1
    EvalRow("wifi driver", "wifi driver", ("wifi", "driver", "sound", *F)),
    # true "sound" scores 1; "sound card" 2 beats it, "card" 1 ties it  -> rank 3
    EvalRow("sound card", "sound", ("sound card", "card", "wifi", *F)),
    # true "ubuntu" scores 1; every distractor 0                         -> rank 1
    EvalRow("ubuntu", "ubuntu", ("wifi", "driver", "sound", *F)),
    # true "driver" scores 0; two distractors score 1, seven tie at 0   -> rank 10
    EvalRow("wifi", "driver", ("wifi", "wifi driver", "sound", "card", *F[:5])),
]
# Ranks 1, 3, 1, 10:
#   recall@1 = recall@2 = 2/4; recall@5 = 3/4;
#   R2@1 (true vs first distractor): 2>1 hit, 1<2 miss, 1>0 hit, 0<1 miss -> 2/4;
#   MRR = (1 + 1/3 + 1 + 1/10) / 4 = 73/120.
EXPECTED = {"recall@1": 0.5, "recall@2": 0.5, "recall@5": 0.75, "recall_2@1": 0.5, "mrr": 73 / 120}
# Distinct candidates: row 1 gives 10; row 2 adds "sound card", "card"; row 3 adds "ubuntu".
N_DISTINCT_RESPONSES = 13


class BagOfWords:
    """A fake PairEncoder that records every text it is asked to encode."""

    bias = 0.0

    def __init__(self) -> None:
        self.contexts: list[str] = []
        self.responses: list[str] = []
        self.calls = 0

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array(
            [[t.split().count(w) for w in VOCAB] for t in texts], dtype=np.float32
        ).reshape(len(texts), len(VOCAB))

    def encode_contexts(self, texts: Sequence[str]) -> np.ndarray:
        self.contexts.extend(texts)
        return self._vectors(texts)

    def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
        self.responses.extend(texts)
        return self._vectors(texts)


def test_model_scores_are_dot_products() -> None:
    scores = model_scores(ROWS, Scorer(BagOfWords()), batch_size=3, progress=False)
    assert scores.dtype == np.float32
    assert scores[0].tolist() == [2, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert scores[1, :3].tolist() == [1, 2, 1]


def test_model_metrics_match_the_hand_count() -> None:
    results = evaluate(ROWS, Scorer(BagOfWords()), batch_size=3, progress=False)
    assert list(results) == ["model"]
    assert results["model"] == pytest.approx(EXPECTED)


def test_each_distinct_text_is_encoded_once_in_batches() -> None:
    encoder = BagOfWords()
    model_scores(ROWS, Scorer(encoder), batch_size=3, progress=False)
    all_candidates = {t for row in ROWS for t in row.candidates}
    assert len(all_candidates) == N_DISTINCT_RESPONSES
    assert Counter(encoder.responses) == Counter(all_candidates)  # each exactly once
    assert Counter(encoder.contexts) == Counter(row.context for row in ROWS)
    # ceil(4 / 3) context batches + ceil(13 / 3) response batches.
    assert encoder.calls == 2 + 5


def test_encoder_with_wrong_output_shape_is_reported() -> None:
    class Broken(BagOfWords):
        def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((1, len(VOCAB)), dtype=np.float32)

    with pytest.raises(ValueError, match="responses: encoder returned shape"):
        model_scores(ROWS, Scorer(Broken()), batch_size=3, progress=False)


def test_report_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "out" / "eval.json", tmp_path / "eval.png"
    run_evaluation(ROWS, Scorer(BagOfWords()), ["tfidf", "random"], out, png, progress=False)
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n"] == 4
    assert list(report["results"]) == ["model", "tfidf", "random"]
    for metrics in report["results"].values():
        assert list(metrics) == list(METRICS)
    assert report["results"]["model"] == pytest.approx(EXPECTED)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "recall@1" in table
    assert "0.500" in table


def test_unknown_baseline_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate(ROWS, baselines=["bm25"])
