"""The only door to the model: one worker thread, and micro-batching of concurrent requests.

Ranking a batch of contexts is one matrix-matrix product instead of many matrix-vector ones,
so per-query cost falls 6-10x (docs/performance.md). Requests that arrive while the model is busy,
or within ``window_s`` of each other, are answered by a single ``Ranker.respond`` call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatbot.timing import StageTimes

if TYPE_CHECKING:
    from chatbot.ranker import Hit, Query, Ranker

logger = logging.getLogger(__name__)

# The most contexts one model call takes. Under 32 clients on two workers, batches average
# about 8 whatever the cap. A larger cap only lets the odd batch of 12-17 form, and a
# request that waits for one of those, then for its own, makes the tail. At 1M responses
# (hybrid model) the p99 was at most 500 ms in 14 of 18 rounds with a cap of 8 and in 2 of
# 15 with 64, and requests a second were 7-8 % more. At 100k, and for a neural-only index
# at 1M, the throughput did not drop either (docs/performance.md, stop 26).
MAX_BATCH_SIZE = 8


@dataclass
class _Job:
    query: Query
    k: int
    future: asyncio.Future[list[Hit]] = field(repr=False)


class MicroBatcher:
    """Runs every model call on one thread; gathers concurrent ``respond`` calls into batches.

    Args:
        ranker: the loaded model; never called from two threads at once.
        batching: if False, each ``respond`` call is its own model call.
        window_s: how long the first request of a batch waits for company; skipped when the
            previous batch had none (a lone client would pay the whole window on every request
            and gain nothing; under load the queue fills while the model is busy anyway).
        max_batch_size: a batch is sent as soon as it is this big.
        on_batch: told the size of every ``Ranker.respond`` call (for metrics).
        on_model_time: told the seconds every ``Ranker.respond`` call took on the model thread.
        on_stage_times: told each model call's seconds per stage (encode, searches, ...).

    Contexts come prepared (normalised, :meth:`Ranker.prepare`) by the caller, so that the
    model thread only encodes and searches.

    Example::

        batcher = MicroBatcher(ranker)
        await batcher.start()
        hits = await batcher.respond(ranker.prepare(["hi", "hello"]), k=3)
        await batcher.close()
    """

    def __init__(
        self,
        ranker: Ranker,
        *,
        batching: bool = True,
        window_s: float = 0.002,
        max_batch_size: int = MAX_BATCH_SIZE,
        on_batch: Callable[[int], None] = lambda size: None,
        on_model_time: Callable[[float], None] = lambda seconds: None,
        on_stage_times: Callable[[dict[str, float]], None] = lambda seconds: None,
    ) -> None:
        self._ranker = ranker
        self._batching = batching
        self._window_s = window_s
        self._max_batch_size = max_batch_size
        self._on_batch = on_batch
        self._on_model_time = on_model_time
        self._on_stage_times = on_stage_times
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranker")
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._last_batch_size = max_batch_size  # the first batch waits its window

    async def start(self) -> None:
        if self._batching:
            self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        """Stops the worker; requests still waiting fail instead of hanging."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while not self._queue.empty():
            _fail(self._queue.get_nowait(), RuntimeError("service is shutting down"))
        self._executor.shutdown(wait=True)

    async def respond(self, query: Query, k: int) -> list[Hit]:
        """Top-``k`` repository responses for one prepared context, best first."""
        if not self._batching:
            self._on_batch(1)
            return (await self._call(self._timed_respond, [query], k))[0]
        future: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(query, k, future))
        return await future

    async def rank_candidates(self, query: Query, candidates: Sequence[str], k: int) -> list[Hit]:
        """Top-``k`` of the caller's candidates for one prepared context; not batched (each
        has its own candidates)."""
        return await self._call(self._ranker.rank_prepared_candidates, query, candidates, k)

    async def _call(self, fn: Callable[..., list], *args: object) -> list:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        batch: list[_Job] = []
        try:
            while True:
                batch = []
                await self._gather(batch)
                # A caller that went away (client disconnect) has cancelled its future.
                batch = [job for job in batch if not job.future.done()]
                if batch:
                    await self._answer(batch)
        finally:
            # Cancelled by close(): whoever is in the batch at hand must not wait forever.
            for job in batch:
                _fail(job, RuntimeError("service is shutting down"))

    async def _gather(self, batch: list[_Job]) -> None:
        """Waits for one job, then up to ``window_s`` for more, filling ``batch`` in place.

        Requests that arrive while the model is busy are queued and join the next batch,
        so under load batches grow even with a tiny window.
        """
        batch.append(await self._queue.get())
        window_s = self._window_s if self._last_batch_size > 1 else 0.0
        deadline = asyncio.get_running_loop().time() + window_s
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._last_batch_size = len(batch)

    async def _answer(self, batch: list[_Job]) -> None:
        try:
            results = await self._respond([job.query for job in batch], max(j.k for j in batch))
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # One bad context must not fail its neighbours: retry each alone to find it.
            logger.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for job in batch:
                await self._answer([job])
            return
        for job, hits in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(list(hits[: job.k]))

    async def _respond(self, queries: list[Query], k: int) -> list[list[Hit]]:
        self._on_batch(len(queries))
        results = await self._call(self._timed_respond, queries, k)
        if len(results) != len(queries):
            raise RuntimeError(f"ranker answered {len(results)} of {len(queries)} contexts")
        return results

    def _timed_respond(self, queries: list[Query], k: int) -> list[list[Hit]]:
        start = time.perf_counter()
        times = StageTimes()
        try:
            return self._ranker.respond_prepared(queries, k, times)
        finally:
            self._on_model_time(time.perf_counter() - start)
            self._on_stage_times(times.seconds)


def _fail(job: _Job, exc: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
