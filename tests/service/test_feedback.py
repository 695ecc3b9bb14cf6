"""Confidence, votes and sessions over HTTP, with the fake word-overlap ranker (fakes.py) and a
real database: the test's SQLite file, or a real PostgreSQL server."""

from __future__ import annotations

import math
import os
import re
import time

import pytest
from fastapi.testclient import TestClient

from chatbot.calibration import Calibration, PlattCurve
from chatbot.store.records import FeedbackStore
from tests.service.conftest import MakeClient
from tests.service.fakes import FakeRanker

# Word overlap with the last turn (fakes.py): "sudo apt-get install the package you need" 3,
# "try restarting the network manager" 2, "hello there, how can I help?" 1, ...
QUESTION = "which package should I install for the network"
BEST, SECOND = "sudo apt-get install the package you need", "try restarting the network manager"


def stored(url: str | None = None) -> FeedbackStore:
    return FeedbackStore.open(url or os.environ["CHATBOT_DATABASE_URL"])


def wait_stored(store: FeedbackStore, request_id: str) -> None:
    """The writer stores answered requests behind the answer, within a fraction of a second."""
    for _ in range(50):
        if store.exchange(request_id) is not None:
            return
        time.sleep(0.1)
    raise AssertionError(f"{request_id} never stored")


def test_every_answer_has_a_request_id_and_a_confidence(client: TestClient) -> None:
    body = client.post("/respond", json={"context": [QUESTION], "k": 1}).json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert body["reply"] == BEST == body["responses"][0]["text"]
    assert len(body["responses"]) == 1  # k=1, though the margin needed the runner-up
    # Uncalibrated (the fake has no fitted curves): σ(best score) = σ(3).
    assert body["confidence"] == pytest.approx(1 / (1 + math.exp(-3)))
    assert body["abstained"] is False
    assert body["session_id"] is None


def test_the_calibration_reads_the_best_score_and_its_margin(make_client: MakeClient) -> None:
    ranker = FakeRanker()
    # σ(score + 2·margin − 6): best 3, runner-up 2 → σ(3 + 2 − 6) = σ(−1)
    ranker.calibration = Calibration({"repository": PlattCurve(1.0, 2.0, -6.0)})
    body = make_client(ranker).post("/respond", json={"context": [QUESTION]}).json()
    assert body["confidence"] == pytest.approx(1 / (1 + math.exp(1)))


def test_below_the_threshold_the_bot_says_it_is_not_sure(make_client: MakeClient) -> None:
    client = make_client(FakeRanker(), min_confidence=0.99, fallback="Could you say more?")
    body = client.post("/respond", json={"context": [QUESTION], "k": 2}).json()
    assert body["abstained"] is True
    assert body["reply"] == "Could you say more?"
    assert [r["text"] for r in body["responses"]] == [BEST, SECOND]  # still there to look at
    # A request may set its own threshold, above or below the service's.
    sure = client.post("/respond", json={"context": [QUESTION], "min_confidence": 0}).json()
    assert (sure["abstained"], sure["reply"]) == (False, BEST)
    metrics = client.get("/metrics").text
    assert "chatbot_abstained_total 1.0" in metrics


@pytest.mark.parametrize("bad", [-0.1, 1.5, "high", True])
def test_a_bad_min_confidence_is_a_422(client: TestClient, bad: object) -> None:
    reply = client.post("/respond", json={"context": ["hi"], "min_confidence": bad})
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("min_confidence:")


def test_a_vote_is_stored_with_what_the_bot_answered(client: TestClient) -> None:
    answer = client.post("/respond", json={"context": [QUESTION], "k": 3}).json()
    vote = {"request_id": answer["request_id"], "vote": "down", "comment": "not this"}
    first = client.post("/feedback", json=vote)
    retry = client.post("/feedback", json=vote)
    on_runner_up = client.post(
        "/feedback", json={"request_id": answer["request_id"], "vote": "up", "response": SECOND}
    )
    assert (first.status_code, retry.status_code, on_runner_up.status_code) == (201, 200, 201)
    assert first.json() == {"id": first.json()["id"], "duplicate": False}
    assert retry.json() == {"id": first.json()["id"], "duplicate": True}

    store = stored()
    votes = list(store.voted())
    assert [(v.feedback.vote, v.feedback.response) for v in votes] == [
        ("down", BEST),
        ("up", SECOND),
    ]
    exchange = votes[0].exchange
    assert exchange.context == [QUESTION]
    assert exchange.model == FakeRanker.model_version
    assert [r["text"] for r in exchange.replies] == [BEST, SECOND, "hello there, how can I help?"]
    assert votes[0].feedback.comment == "not this"
    assert votes[0].feedback.created_at is not None


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"request_id": "0" * 32, "vote": "up"}, 404, "no such answer"),
        ({"request_id": "0" * 32, "vote": "maybe"}, 422, "vote:"),
        ({"request_id": "not-an-id", "vote": "up"}, 422, "request_id:"),
        ({"request_id": "0" * 32}, 422, "vote:"),
        ({"request_id": "0" * 32, "vote": "up", "extra": 1}, 422, "unknown field"),
    ],
)
def test_bad_votes_get_a_4xx(client: TestClient, body: dict, status: int, detail: str) -> None:
    reply = client.post("/feedback", json=body)
    assert reply.status_code == status
    assert detail in reply.json()["detail"]


def test_a_vote_on_a_reply_that_was_not_shown_is_a_422(client: TestClient) -> None:
    answer = client.post("/respond", json={"context": [QUESTION], "k": 2}).json()
    reply = client.post(
        "/feedback",
        json={"request_id": answer["request_id"], "vote": "up", "response": "you are welcome"},
    )
    assert reply.status_code == 422
    assert "not one of the replies shown" in reply.json()["detail"]


def test_a_session_keeps_the_conversation(client: TestClient, ranker: FakeRanker) -> None:
    first = client.post("/respond", json={"context": [QUESTION], "session_id": "chat-1"}).json()
    assert first["session_id"] == "chat-1"
    client.post("/respond", json={"context": ["show me the logs"], "session_id": "chat-1"})
    assert ranker.batches[-1] == [[QUESTION, BEST, "show me the logs"]]
    # Another session, or none, starts from nothing.
    client.post("/respond", json={"context": ["hello"], "session_id": "chat-2"})
    assert ranker.batches[-1] == [["hello"]]
    client.post("/respond", json={"context": ["hello again"]})
    assert ranker.batches[-1] == [["hello again"]]


def test_sessions_are_bounded_in_turns_and_idle_time(make_client: MakeClient) -> None:
    ranker = FakeRanker()
    client = make_client(ranker, session_turns=3, session_idle_s=0.5)
    for message in ("one", "two", "three"):
        client.post("/respond", json={"context": [message], "session_id": "s"})
    last_reply = ranker.rank_candidates(["three"], ranker.repository, 1)[0].text
    assert ranker.batches[-1][0][-1] == "three"
    client.post("/respond", json={"context": ["four"], "session_id": "s"})
    # The session kept its 3 latest turns: "three"'s context and the reply to it.
    assert ranker.batches[-1] == [[*ranker.batches[-2][0][-2:], last_reply, "four"]]
    time.sleep(0.6)
    client.post("/respond", json={"context": ["five"], "session_id": "s"})
    assert ranker.batches[-1] == [["five"]]  # idle too long: a fresh session, not an error


def test_the_fallback_is_not_remembered_as_a_turn(make_client: MakeClient) -> None:
    ranker = FakeRanker()
    client = make_client(ranker, min_confidence=0.999)
    client.post("/respond", json={"context": [QUESTION], "session_id": "s"})
    client.post("/respond", json={"context": ["more words"], "session_id": "s"})
    assert ranker.batches[-1] == [[QUESTION, "more words"]]


@pytest.mark.parametrize("bad", ["", "has space", "x" * 101, 7])
def test_a_bad_session_id_is_a_422(client: TestClient, bad: object) -> None:
    reply = client.post("/respond", json={"context": ["hi"], "session_id": bad})
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("session_id:")


def test_two_workers_on_one_database_share_sessions_and_votes(make_client: MakeClient) -> None:
    """Each worker process is its own app; the database is what they share."""
    first_ranker, second_ranker = FakeRanker(), FakeRanker()
    first, second = make_client(first_ranker), make_client(second_ranker)
    answer = first.post("/respond", json={"context": [QUESTION], "session_id": "s"}).json()
    second.post("/respond", json={"context": ["and then?"], "session_id": "s"})
    assert second_ranker.batches[-1] == [[QUESTION, BEST, "and then?"]]
    # A vote reaching the other worker finds the answer once its writer stored it.
    vote = second.post("/feedback", json={"request_id": answer["request_id"], "vote": "up"})
    assert vote.status_code == 201


@pytest.mark.postgres
def test_with_the_database_down_respond_answers_and_feedback_is_a_503(
    make_client: MakeClient, postgres, postgres_url: str
) -> None:
    client = make_client(FakeRanker(), database_url=postgres_url)
    answer = client.post("/respond", json={"context": [QUESTION], "session_id": "s"}).json()
    wait_stored(stored(postgres_url), answer["request_id"])
    postgres.stop()
    try:
        during = client.post("/respond", json={"context": [QUESTION], "session_id": "s"})
        assert during.status_code == 200  # the session could not be read: answered afresh
        assert during.json()["reply"] == BEST
        vote = client.post("/feedback", json={"request_id": answer["request_id"], "vote": "up"})
        assert vote.status_code == 503
        assert "feedback database is unavailable" in vote.json()["detail"]
        metrics = client.get("/metrics").text
        assert 'chatbot_store_errors_total{operation="feedback"} 1.0' in metrics
    finally:
        postgres.start()
    # Back up: the vote goes through, and the answer given while it was down was kept.
    vote = client.post("/feedback", json={"request_id": answer["request_id"], "vote": "up"})
    assert vote.status_code == 201
    later = during.json()["request_id"]
    wait_stored(stored(postgres_url), later)
