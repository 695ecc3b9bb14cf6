"""Reading and writing exchanges, feedback and sessions.

Every method is one short transaction. A database that cannot be reached raises
:class:`~chatbot.errors.StoreError`, which the service turns into a 503 (feedback) or does
without (sessions, exchange records): answering never depends on the database.

Example:
    >>> store = FeedbackStore.open("sqlite://")
    >>> store.record_exchanges([Exchange.example("r1")])
    >>> store.add_feedback(Feedback("r1", "down", "try a reboot")).duplicate
    False
    >>> store.add_feedback(Feedback("r1", "down", "try a reboot")).duplicate  # a retry
    True
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from chatbot.errors import StoreError
from chatbot.store.database import describe, first_line, open_database
from chatbot.store.schema import exchanges, feedback, sessions

T = TypeVar("T")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_request_id() -> str:
    """32 hex digits: the time of issue in milliseconds (12), then 80 random bits, so that
    a request id says how old it is (:func:`issued_at`).

    Example:
        >>> rid = new_request_id()
        >>> len(rid), abs(issued_at(rid) - time.time()) < 5
        (32, True)
    """
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def issued_at(request_id: str) -> float:
    """When :func:`new_request_id` made this id (seconds since the epoch; 0 if not one)."""
    try:
        return int(request_id[:12], 16) / 1000
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Exchange:
    """One answered request."""

    request_id: str
    model: str
    context: list[str]
    context_normalized: str
    normalization: str
    replies: list[dict[str, Any]]  # [{"text", "score"}], best first
    reply: str
    confidence: float
    abstained: bool
    session_id: str | None = None
    created_at: dt.datetime = field(default_factory=now)

    @classmethod
    def example(cls, request_id: str) -> Exchange:
        """A small made-up exchange (docs and tests)."""
        return cls(
            request_id,
            "v000001",
            ["my wifi is gone"],
            "my wifi be gone __eou__ __eot__",
            "udc",
            [{"text": "try a reboot", "score": 3.0}, {"text": "check dmesg", "score": 2.5}],
            "try a reboot",
            0.4,
            False,
        )


@dataclass(frozen=True)
class Feedback:
    """A vote on one reply of an exchange."""

    request_id: str
    vote: str  # "up" or "down"
    response: str
    comment: str | None = None
    created_at: dt.datetime = field(default_factory=now)


@dataclass(frozen=True)
class Stored:
    """What storing a feedback did."""

    id: int
    duplicate: bool  # the same (request_id, vote) was stored before: nothing new was written


@dataclass(frozen=True)
class VotedFeedback:
    """A feedback with the exchange it is about (export, report)."""

    feedback: Feedback
    exchange: Exchange


class FeedbackStore:
    """The database of one service (or of a command reading it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, must_exist: bool = False) -> FeedbackStore:
        """Connects and migrates; :class:`StoreError` if it cannot."""
        return cls(open_database(url, must_exist))

    def close(self) -> None:
        self.engine.dispose()

    @property
    def where(self) -> str:
        return describe(self.engine)

    def _run(self, work: Callable[[Any], T]) -> T:
        try:
            with self.engine.begin() as connection:
                return work(connection)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.where}: {first_line(exc)}") from exc

    # Exchanges ---------------------------------------------------------------------------

    def record_exchanges(self, batch: Sequence[Exchange]) -> None:
        """Stores answered requests (one transaction; a request stored already is skipped)."""
        if not batch:
            return

        def work(connection: Any) -> None:
            ids = [e.request_id for e in batch]
            known = set(
                connection.scalars(
                    select(exchanges.c.request_id).where(exchanges.c.request_id.in_(ids))
                )
            )
            rows = [asdict(e) for e in batch if e.request_id not in known]
            if rows:
                connection.execute(insert(exchanges), rows)

        self._run(work)

    def exchange(self, request_id: str) -> Exchange | None:
        def work(connection: Any) -> Exchange | None:
            row = connection.execute(
                select(exchanges).where(exchanges.c.request_id == request_id)
            ).first()
            return Exchange(**row._asdict()) if row is not None else None

        return self._run(work)

    # Feedback ----------------------------------------------------------------------------

    def add_feedback(self, item: Feedback) -> Stored:
        """Stores a vote once: a retry of the same (request_id, vote) returns the first one.

        Raises:
            StoreError: the database cannot be reached.
            KeyError: the exchange is not stored.
        """

        def existing(connection: Any) -> int | None:
            return connection.scalar(
                select(feedback.c.id).where(
                    feedback.c.request_id == item.request_id, feedback.c.vote == item.vote
                )
            )

        def work(connection: Any) -> Stored:
            found = existing(connection)
            if found is not None:
                return Stored(found, duplicate=True)
            if (
                connection.scalar(
                    select(exchanges.c.request_id).where(exchanges.c.request_id == item.request_id)
                )
                is None
            ):
                raise KeyError(item.request_id)
            new = connection.execute(insert(feedback).values(**asdict(item))).inserted_primary_key
            return Stored(int(new[0]), duplicate=False)

        try:
            return self._run(work)
        except IntegrityError:  # a rival request stored the same vote between our two steps
            found = self._run(existing)
            if found is None:
                raise
            return Stored(found, duplicate=True)

    def voted(self, since: dt.datetime | None = None) -> list[VotedFeedback]:
        """Every feedback with its exchange, oldest first."""

        def work(connection: Any) -> list[VotedFeedback]:
            query = (
                select(feedback, exchanges)
                .join(exchanges, feedback.c.request_id == exchanges.c.request_id)
                .order_by(feedback.c.id)
            )
            if since is not None:
                query = query.where(feedback.c.created_at >= since)
            out = []
            for row in connection.execute(query).mappings():
                vote = Feedback(
                    row[feedback.c.request_id],
                    row[feedback.c.vote],
                    row[feedback.c.response],
                    row[feedback.c.comment],
                    row[feedback.c.created_at],
                )
                exchange = Exchange(**{c.name: row[c] for c in exchanges.c})
                out.append(VotedFeedback(vote, exchange))
            return out

        return self._run(work)

    def counts(self) -> dict[str, int]:
        def work(connection: Any) -> dict[str, int]:
            return {
                "exchanges": connection.scalar(select(func.count()).select_from(exchanges)),
                "feedback": connection.scalar(select(func.count()).select_from(feedback)),
                "sessions": connection.scalar(select(func.count()).select_from(sessions)),
            }

        return self._run(work)

    # Sessions ----------------------------------------------------------------------------

    def session_turns(self, session_id: str, idle_s: float) -> list[str]:
        """The session's turns, oldest first; none if it is unknown or idle for ``idle_s``."""

        def work(connection: Any) -> list[str]:
            row = connection.execute(
                select(sessions.c.turns, sessions.c.updated_at).where(
                    sessions.c.session_id == session_id
                )
            ).first()
            if row is None or _aware(row.updated_at) < now() - dt.timedelta(seconds=idle_s):
                return []
            return list(row.turns)

        return self._run(work)

    def save_session(self, session_id: str, turns: Sequence[str]) -> None:
        """Replaces the session's turns (creating it)."""

        def work(connection: Any) -> None:
            values = {"turns": list(turns), "updated_at": now()}
            changed = connection.execute(
                update(sessions).where(sessions.c.session_id == session_id).values(**values)
            ).rowcount
            if not changed:
                try:
                    with connection.begin_nested():
                        connection.execute(insert(sessions).values(session_id=session_id, **values))
                except IntegrityError:  # created meanwhile by another worker
                    connection.execute(
                        update(sessions).where(sessions.c.session_id == session_id).values(**values)
                    )

        self._run(work)

    def prune_sessions(self, idle_s: float, max_sessions: int) -> int:
        """Forgets sessions idle for ``idle_s`` and the oldest beyond ``max_sessions``;
        returns how many went."""

        def work(connection: Any) -> int:
            cutoff = now() - dt.timedelta(seconds=idle_s)
            gone = connection.execute(delete(sessions).where(sessions.c.updated_at < cutoff))
            removed = int(gone.rowcount or 0)
            total = connection.scalar(select(func.count()).select_from(sessions))
            if total > max_sessions:
                oldest = (
                    select(sessions.c.session_id)
                    .order_by(sessions.c.updated_at)
                    .limit(total - max_sessions)
                )
                ids = list(connection.scalars(oldest))
                connection.execute(delete(sessions).where(sessions.c.session_id.in_(ids)))
                removed += len(ids)
            return removed

        return self._run(work)


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes (stored in UTC by this module).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
