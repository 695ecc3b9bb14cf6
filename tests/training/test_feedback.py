"""Votes back into training: the export, the report, and a training run that learns from a
down-vote (tiny data)."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatbot.store.records import Exchange, Feedback, FeedbackStore
from training.feedback import downvoted_report, export_feedback
from training.sources.udc_csv import TRAIN_HEADER, read_eval_rows


def exchange(request_id: str, context: str, replies: list[str], **overrides: object) -> Exchange:
    base = Exchange.example(request_id)
    values = {
        "context": [context],
        "context_normalized": f"{context} __eou__ __eot__",
        "normalization": "tokenize",
        "replies": [{"text": t, "score": 1.0} for t in replies],
        "reply": replies[0],
        **overrides,
    }
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'votes.sqlite3'}"


def test_export_writes_up_votes_as_positives_and_down_votes_as_negatives(
    url: str, tmp_path: Path
) -> None:
    store = FeedbackStore.open(url)
    store.record_exchanges(
        [
            exchange("a", "My WiFi died", ["Try: sudo dhclient wlan0", "Reboot."]),
            exchange("b", "thanks", ["You're welcome!"]),
            exchange("c", "???", ["Reboot."], reply="I'm not sure", abstained=True),
        ]
    )
    store.add_feedback(Feedback("a", "down", "Try: sudo dhclient wlan0"))
    store.add_feedback(Feedback("a", "up", "Reboot."))
    store.add_feedback(Feedback("b", "up", "You're welcome!"))
    store.add_feedback(Feedback("c", "down", "I'm not sure"))  # on the fallback: left out
    store.close()

    summary = export_feedback(url, tmp_path / "votes.csv")

    with (tmp_path / "votes.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(TRAIN_HEADER)
    # The reply as the model reads it: the context's normalisation ("tokenize": lower case).
    assert rows[1:] == [
        ["My WiFi died __eou__ __eot__", "try : sudo dhclient wlan0 __eou__", "0"],
        ["My WiFi died __eou__ __eot__", "reboot . __eou__", "1"],
        ["thanks __eou__ __eot__", "you 're welcome ! __eou__", "1"],
    ]
    assert (summary.rows, summary.positives, summary.negatives) == (3, 2, 1)
    assert summary.skipped == {"vote on the fallback text": 1}


def test_the_report_lists_the_replies_voted_down_most(url: str) -> None:
    store = FeedbackStore.open(url)
    replies = ["bad answer", "meh answer", "good answer"]
    store.record_exchanges([exchange(f"r{i}", f"question {i}", replies) for i in range(4)])
    for i in range(3):
        store.add_feedback(Feedback(f"r{i}", "down", "bad answer"))
    store.add_feedback(Feedback("r3", "down", "meh answer"))
    store.add_feedback(Feedback("r3", "up", "good answer"))
    store.close()

    report = downvoted_report(url)

    assert [(r["response"], r["down"], r["up"]) for r in report] == [
        ("bad answer", 3, 0),
        ("meh answer", 1, 0),
    ]  # "good answer" was never voted down
    assert report[0]["models"] == ["v000001"]


def test_the_commands_export_and_report(url: str, tmp_path: Path) -> None:
    store = FeedbackStore.open(url)
    store.record_exchanges([exchange("a", "hi", ["hello"])])
    store.add_feedback(Feedback("a", "down", "hello"))
    store.close()
    chatbot = [sys.executable, "-m", "chatbot_cli", "feedback"]
    out = tmp_path / "votes.csv"
    export = subprocess.run(
        [*chatbot, "export", "--database", url, "--out", str(out)], capture_output=True, text=True
    )
    assert export.returncode == 0, export.stderr
    assert "1 rows (0 up, 1 down)" in export.stdout
    assert out.read_text().splitlines()[1] == "hi __eou__ __eot__,hello __eou__,0"
    report = subprocess.run(
        [*chatbot, "report", "--database", url], capture_output=True, text=True, check=True
    )
    assert "hello" in report.stdout and '"remove": ["hello"]' in report.stdout
    missing = subprocess.run(
        [*chatbot, "export", "--database", f"sqlite:///{tmp_path}/none.db", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: no database at")


@pytest.mark.slow
def test_training_on_a_down_vote_lowers_that_reply_for_its_context(
    url: str, tmp_path: Path
) -> None:
    """The bot's best reply to a test context is voted down; trained again with the exported
    votes (same data, same seed), the model ranks that reply lower for that context."""
    from chatbot.artifact import load_artifact
    from training.presets import PRESETS
    from training.synthetic import write_synthetic_udc
    from training.train import train

    data = write_synthetic_udc(tmp_path / "syn", 600, 30, 30, seed=5)
    model_config, train_config = PRESETS["tiny"]
    train_config = dataclasses.replace(train_config, max_steps=150, eval_every=150)

    def fit(out: str, extra: list[Path]) -> object:
        train(
            data / "train.csv", None, tmp_path / out, model_config, train_config, extra_train=extra
        )
        return load_artifact(tmp_path / out).scorer()

    def ranks(scorer: object, context: str, candidates: tuple[str, ...]) -> np.ndarray:
        scores = scorer.pair_scores([context], [list(candidates)])[0]  # type: ignore[attr-defined]
        return np.argsort(np.argsort(-scores, kind="stable"), kind="stable")  # 0 = best

    before = fit("before", [])
    row = next(read_eval_rows(data / "test.csv"))
    best = int(np.argmin(ranks(before, row.context, row.candidates)))
    bad_reply = row.candidates[best]

    # 20 users asked this and voted the bot's reply down (their contexts reach the service
    # raw; these synthetic ones are already in the model's normalised form).
    store = FeedbackStore.open(url)
    for i in range(20):
        store.record_exchanges(
            [
                exchange(
                    f"q{i}",
                    row.context,
                    list(row.candidates),
                    context_normalized=row.context,
                    normalization="none",
                    reply=bad_reply,
                )
            ]
        )
        store.add_feedback(Feedback(f"q{i}", "down", bad_reply))
    store.close()
    export_feedback(url, tmp_path / "votes.csv")

    after = fit("after", [tmp_path / "votes.csv"])
    rank_before = ranks(before, row.context, row.candidates)[best]
    rank_after = ranks(after, row.context, row.candidates)[best]
    assert rank_before == 0
    assert rank_after >= 3, f"the down-voted reply is still ranked {rank_after + 1}"
