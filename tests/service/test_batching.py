"""Micro-batching: concurrent requests share one model call, and each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.batching import MicroBatcher
from service.settings import Settings
from tests.service.fakes import BrokenRanker, FakeRanker, as_ranker

# "question i" shares exactly one word ("i") with "answer i" and none with the other answers.
ANSWERS = [f"answer {i}" for i in range(8)]


def _batcher(ranker: FakeRanker, **kwargs: Any) -> MicroBatcher:
    return MicroBatcher(as_ranker(ranker), window_s=0.05, **kwargs)


async def _ask_all(batcher: MicroBatcher, contexts: list[list[str]], ks: list[int]) -> list[Any]:
    await batcher.start()
    try:
        calls = [batcher.respond(c, k) for c, k in zip(contexts, ks, strict=True)]
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_calls_share_one_model_call_and_each_gets_its_own_top_k() -> None:
    ranker = FakeRanker(ANSWERS)
    sizes: list[int] = []
    contexts = [["question 1"], ["question 2"], ["question 3"]]

    results = asyncio.run(_ask_all(_batcher(ranker, on_batch=sizes.append), contexts, [1, 2, 3]))

    assert ranker.batches == [contexts]  # one call, asked for the largest k (3)
    assert sizes == [3]
    assert [[hit.text for hit in hits][:1] for hits in results] == [
        ["answer 1"],
        ["answer 2"],
        ["answer 3"],
    ]
    assert [len(hits) for hits in results] == [1, 2, 3]


def test_batches_never_exceed_max_batch_size() -> None:
    ranker = FakeRanker(ANSWERS)
    contexts = [[f"question {i}"] for i in range(5)]

    asyncio.run(_ask_all(_batcher(ranker, max_batch_size=2), contexts, [1] * 5))

    assert [len(batch) for batch in ranker.batches] == [2, 2, 1]


def test_without_batching_each_call_is_its_own_model_call() -> None:
    ranker = FakeRanker(ANSWERS)
    contexts = [[f"question {i}"] for i in range(3)]

    results = asyncio.run(_ask_all(_batcher(ranker, batching=False), contexts, [1] * 3))

    assert [len(batch) for batch in ranker.batches] == [1, 1, 1]
    assert [hits[0].text for hits in results] == ["answer 0", "answer 1", "answer 2"]


def test_a_failing_context_fails_only_its_own_caller() -> None:
    ranker = BrokenRanker(ANSWERS)
    contexts = [["question 1"], ["boom"], ["question 2"]]

    results = asyncio.run(_ask_all(_batcher(ranker), contexts, [1] * 3))

    assert results[0][0].text == "answer 1"
    assert isinstance(results[1], RuntimeError)
    assert results[2][0].text == "answer 2"
    # The batch failed as a whole, then each context was retried alone.
    assert [len(batch) for batch in ranker.batches] == [3, 1, 1, 1]


def test_close_fails_the_callers_still_waiting() -> None:
    async def scenario() -> list[Any]:
        batcher = _batcher(FakeRanker(ANSWERS, delay=0.2))
        await batcher.start()
        calls = [asyncio.ensure_future(batcher.respond(["question 1"], 1)) for _ in range(2)]
        await asyncio.sleep(0.1)  # the model is busy with both
        await batcher.close()
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())

    assert all(isinstance(r, RuntimeError) and "shutting down" in str(r) for r in results)


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_http_requests_are_batched(
    make_settings: Callable[..., Settings], batching: bool
) -> None:
    # While the fake model sleeps on the first batch, the other requests queue up behind it.
    ranker = FakeRanker(ANSWERS, delay=0.05)
    app = create_app(make_settings(batching=batching, batch_window_ms=20), ranker=as_ranker(ranker))

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                calls = [
                    client.post("/respond", json={"context": [f"question {i}"], "k": 1})
                    for i in range(8)
                ]
                return await asyncio.gather(*calls)

    replies = asyncio.run(scenario())

    assert [r.json()["responses"][0]["text"] for r in replies] == ANSWERS
    sizes = [len(batch) for batch in ranker.batches]
    assert sum(sizes) == 8
    assert (max(sizes) > 1) is batching


def test_a_lone_client_does_not_wait_for_the_window() -> None:
    async def scenario() -> list[float]:
        batcher = MicroBatcher(as_ranker(FakeRanker(ANSWERS)), window_s=0.2)
        await batcher.start()
        took = []
        try:
            for i in range(3):
                start = asyncio.get_running_loop().time()
                await batcher.respond([f"question {i}"], 1)
                took.append(asyncio.get_running_loop().time() - start)
        finally:
            await batcher.close()
        return took

    first, *later = asyncio.run(scenario())

    assert first >= 0.2  # nothing known yet: the first batch waits for company
    assert all(t < 0.1 for t in later)  # the last batch was alone: no window
