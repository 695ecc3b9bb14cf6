"""The service's side of the database: answered requests written behind, votes, sessions.

``/respond`` never waits on the database for its answer: each exchange goes into a buffer
that a writer thread stores in batches (retrying while the database is away, dropping the
oldest past :data:`MAX_PENDING`). A vote on an exchange still in the buffer stores that
exchange first. Sessions are read before and written after an answer, each within
``database_timeout_s``; a session that cannot be read answers as a new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from chatbot.errors import StoreError
from chatbot.store.database import create_database_engine, describe, upgrade
from chatbot.store.records import Exchange, Feedback, FeedbackStore, Stored, issued_at
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

FLUSH_EVERY_S = 0.2
PRUNE_EVERY_S = 60.0
MAX_PENDING = 10_000
# A vote can reach another worker before the answering worker's writer stored the exchange:
# it waits for an exchange until this long after the request was answered.
FIND_WAIT_S = 1.5


class FeedbackLog:
    """Exchanges, feedback and sessions of one worker process."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = FeedbackStore(create_database_engine(settings.database_url))
        self._migrated = False
        self._pending: OrderedDict[str, Exchange] = OrderedDict()
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    @property
    def where(self) -> str:
        return describe(self.store.engine)

    def start(self) -> None:
        try:
            self._ensure()
        except StoreError as exc:
            log.error("feedback database unavailable (will retry): %s", exc)
        self._thread = threading.Thread(target=self._run, name="feedback-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self._flush()
        except StoreError as exc:
            log.error("%d answered requests not stored at shutdown: %s", len(self._pending), exc)
        self.store.close()

    def _ensure(self) -> None:
        if not self._migrated:
            upgrade(self.store.engine)  # StoreError while the database is away
            self._migrated = True

    def _call(self, work: Callable[[], T]) -> T:
        self._ensure()
        return work()

    # Exchanges ---------------------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        """Queues an answered request for storing; never blocks on the database."""
        with self._lock:
            self._pending[exchange.request_id] = exchange
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
                self.metrics.exchanges_dropped.inc()

    def _flush(self, only: str | None = None) -> None:
        with self._write_lock:
            with self._lock:
                if only is not None:
                    batch = [self._pending[only]] if only in self._pending else []
                else:
                    batch = list(self._pending.values())
            if not batch:
                return
            self._call(lambda: self.store.record_exchanges(batch))
            with self._lock:
                for exchange in batch:
                    self._pending.pop(exchange.request_id, None)

    def _run(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.wait(FLUSH_EVERY_S):
            try:
                self._flush()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    self._call(
                        lambda: self.store.prune_sessions(
                            self.settings.session_idle_s, self.settings.max_sessions
                        )
                    )
                if self._last_error:
                    log.info("feedback database is back: %s", self.where)
                    self._last_error = ""
            except StoreError as exc:
                self.metrics.store_errors.labels("record").inc()
                if str(exc) != self._last_error:  # once per outage, not 5 lines a second
                    log.error("cannot store answered requests (%d waiting): %s", len(self), exc)
                    self._last_error = str(exc)

    def __len__(self) -> int:
        return len(self._pending)

    # Feedback ----------------------------------------------------------------------------

    def find(self, request_id: str) -> Exchange | None:
        """The exchange of a request: still buffered here, or stored (by any worker)."""
        with self._lock:
            found = self._pending.get(request_id)
        if found is not None:
            return found
        # Only a request answered moments ago may still be on its way from another worker:
        # an old or made-up id gets its answer at once.
        deadline = issued_at(request_id) + FIND_WAIT_S
        while True:
            stored = self._call(lambda: self.store.exchange(request_id))
            if stored is not None or time.time() > deadline:
                return stored
            time.sleep(0.1)

    def add_feedback(self, item: Feedback) -> Stored:
        """Stores a vote (its exchange first, if it is still buffered)."""
        self._flush(only=item.request_id)
        stored = self._call(lambda: self.store.add_feedback(item))
        if not stored.duplicate:
            self.metrics.feedback.labels(item.vote).inc()
        return stored

    # Sessions ----------------------------------------------------------------------------

    async def session_turns(self, session_id: str) -> list[str]:
        """The session's turns; none if it is new, expired, or the database does not answer."""
        turns = await self._in_time(
            "session_read",
            lambda: self.store.session_turns(session_id, self.settings.session_idle_s),
        )
        return turns or []

    async def save_session(self, session_id: str, turns: list[str]) -> None:
        kept = turns[-self.settings.session_turns :]
        await self._in_time("session_write", lambda: self.store.save_session(session_id, kept))

    async def _in_time(self, operation: str, work: Callable[[], T]) -> T | None:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._call, work), self.settings.database_timeout_s
            )
        except (StoreError, TimeoutError) as exc:
            self.metrics.store_errors.labels(operation).inc()
            reason = str(exc) or f"no answer within {self.settings.database_timeout_s:g} s"
            log.warning("%s skipped: %s", operation.replace("_", " "), reason)
            return None
