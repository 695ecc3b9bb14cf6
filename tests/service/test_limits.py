"""Abuse limits on /respond: candidates, body size (declared and streamed), rate, deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.service.conftest import MakeClient
from tests.service.fakes import FakeRanker


def test_more_candidates_than_the_limit_get_a_413(make_client: MakeClient) -> None:
    client = make_client(max_candidates=3)
    body = {"context": ["hi"], "candidates": ["a", "b", "c", "d"]}
    reply = client.post("/respond", json=body)
    assert reply.status_code == 413
    assert reply.json() == {"detail": "4 candidates; at most 3 are accepted"}


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    make_client: MakeClient, ranker: FakeRanker
) -> None:
    client = make_client(ranker, max_body_bytes=2048)
    body = json.dumps({"context": ["x" * 5000]})
    reply = client.post("/respond", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["detail"].startswith("request body too large: 5,")
    assert ranker.batches == []


def test_a_streamed_body_over_the_limit_is_refused(
    make_client: MakeClient, ranker: FakeRanker
) -> None:
    client = make_client(ranker, max_body_bytes=2048)
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        yield b'{"context": ["'
        for _ in range(100):
            sent += 1
            yield b"x" * 1000
        yield b'"]}'

    reply = client.post("/respond", content=chunks(), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert "at most 2,048 bytes" in reply.json()["detail"]
    assert ranker.batches == []


def test_a_streamed_body_under_the_limit_is_answered(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=2048)
    reply = client.post(
        "/respond",
        content=iter([b'{"context": ', b'["hi"], "k": 1}']),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 200 and len(reply.json()["responses"]) == 1


def test_the_rate_limit_answers_429_with_retry_after(make_client: MakeClient) -> None:
    client = make_client(rate_limit_per_s=0.5, rate_limit_burst=2)
    codes = [client.post("/respond", json={"context": ["hi"]}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    reply = client.post("/respond", json={"context": ["hi"]})
    assert reply.headers["Retry-After"] == "2"
    assert "at most 0.5 a second" in reply.json()["detail"]
    assert client.get("/healthz").status_code == 200  # only /respond is limited


def test_no_rate_limit_by_default(client: TestClient) -> None:
    codes = {client.post("/respond", json={"context": ["hi"]}).status_code for _ in range(40)}
    assert codes == {200}


def test_a_request_past_its_deadline_gets_503_and_is_dropped_from_the_batch(
    make_client: MakeClient,
) -> None:
    ranker = FakeRanker(delay=0.6)
    client = make_client(ranker, request_timeout_s=0.3, batch_window_ms=0)

    def ask(word: str) -> int:
        return client.post("/respond", json={"context": [word]}).status_code

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, "first")
        while not ranker.batches:  # until "first" is on the model thread
            time.sleep(0.01)
        second = pool.submit(ask, "second")  # waits in the queue, then gives up
        codes = (first.result(), second.result())
    time.sleep(0.8)  # the model thread finishes "first" and would pick up "second" now

    assert codes == (503, 503)
    assert ranker.batches == [[["first"]]]  # "second" gave up before it reached the model
    reply = client.post("/respond", json={"context": ["third"]})
    assert reply.status_code == 503
    assert "no answer within 0.3 s" in reply.json()["detail"]


def test_limits_set_below_the_documented_ones_get_a_413(make_client: MakeClient) -> None:
    client = make_client(max_turns=2, max_chars=5)
    turns = client.post("/respond", json={"context": ["a", "b", "c"]})
    chars = client.post("/respond", json={"context": ["hi"], "candidates": ["abcdef"]})
    assert (turns.status_code, chars.status_code) == (413, 413)
    assert turns.json()["detail"] == "context has 3 turns; at most 2 are accepted"
    assert chars.json()["detail"] == (
        "a turn or candidate has 6 characters; at most 5 are accepted"
    )


def test_a_whole_number_written_as_a_float_is_a_valid_k(client: TestClient) -> None:
    reply = client.post("/respond", json={"context": ["hi"], "k": 2.0})
    assert reply.status_code == 200 and len(reply.json()["responses"]) == 2
