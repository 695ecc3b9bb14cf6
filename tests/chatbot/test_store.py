"""The feedback database, against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text, update

from chatbot.errors import StoreError
from chatbot.store.database import open_database
from chatbot.store.records import Exchange, Feedback, FeedbackStore
from chatbot.store.schema import sessions


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url: str) -> FeedbackStore:
    opened = FeedbackStore.open(url)
    yield opened
    opened.close()


def test_migrations_make_the_tables_and_run_again_without_change(url: str) -> None:
    first = open_database(url)
    tables = set(inspect(first).get_table_names())
    assert {"exchanges", "feedback", "sessions", "alembic_version"} <= tables
    with first.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    first.dispose()
    again = open_database(url)  # already at head: nothing to do, nothing fails
    with again.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == version
        )
    again.dispose()


def test_processes_migrating_at_once_do_not_collide(url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            open_database(url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_an_exchange_round_trips(store: FeedbackStore) -> None:
    exchange = Exchange.example("a" * 32)
    store.record_exchanges([exchange])
    store.record_exchanges([exchange])  # stored once, however often it is flushed
    found = store.exchange("a" * 32)
    assert found is not None
    assert found.context == ["my wifi is gone"]
    assert found.replies[1] == {"text": "check dmesg", "score": 2.5}
    assert found.abstained is False
    assert store.exchange("b" * 32) is None
    assert store.counts()["exchanges"] == 1


def test_a_vote_is_stored_once_per_request_and_vote(store: FeedbackStore) -> None:
    store.record_exchanges([Exchange.example("r1")])
    first = store.add_feedback(Feedback("r1", "down", "try a reboot", "did not help"))
    retry = store.add_feedback(Feedback("r1", "down", "try a reboot", "did not help"))
    other = store.add_feedback(Feedback("r1", "up", "check dmesg"))
    assert (first.duplicate, retry.duplicate, other.duplicate) == (False, True, False)
    assert retry.id == first.id != other.id
    votes = list(store.voted())
    assert [(v.feedback.vote, v.feedback.response) for v in votes] == [
        ("down", "try a reboot"),
        ("up", "check dmesg"),
    ]
    assert votes[0].feedback.comment == "did not help"
    assert votes[0].exchange.context_normalized == "my wifi be gone __eou__ __eot__"


def test_a_vote_on_an_unknown_exchange_is_refused(store: FeedbackStore) -> None:
    with pytest.raises(KeyError):
        store.add_feedback(Feedback("nope", "up", "x"))
    assert store.counts()["feedback"] == 0


def test_sessions_keep_turns_and_expire(store: FeedbackStore) -> None:
    assert store.session_turns("s1", idle_s=60) == []  # unknown: fresh, not an error
    store.save_session("s1", ["hi", "hello"])
    store.save_session("s1", ["hi", "hello", "wifi?"])
    assert store.session_turns("s1", idle_s=60) == ["hi", "hello", "wifi?"]
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with store.engine.begin() as connection:
        connection.execute(update(sessions).values(updated_at=an_hour_ago))
    assert store.session_turns("s1", idle_s=60) == []  # expired
    assert store.session_turns("s1", idle_s=7200) == ["hi", "hello", "wifi?"]


def test_pruning_forgets_idle_sessions_and_the_oldest_beyond_the_cap(store: FeedbackStore) -> None:
    for i in range(5):
        store.save_session(f"s{i}", [str(i)])
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with store.engine.begin() as connection:
        connection.execute(
            update(sessions).where(sessions.c.session_id == "s0").values(updated_at=old)
        )
    assert store.prune_sessions(idle_s=3600, max_sessions=3) == 2  # s0 idle, then s1 oldest
    left = [f"s{i}" for i in range(5) if store.session_turns(f"s{i}", idle_s=3600)]
    assert left == ["s2", "s3", "s4"]


def test_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="database"):
        FeedbackStore.open(f"sqlite:///{blocker}/inside/feedback.sqlite3")
    with pytest.raises(StoreError, match="not a URL"):
        FeedbackStore.open("no url at all")
    with pytest.raises(StoreError, match="no database at"):
        FeedbackStore.open(f"sqlite:///{tmp_path}/missing.sqlite3", must_exist=True)


@pytest.mark.postgres
def test_a_stopped_postgres_server_is_a_store_error(postgres, postgres_url: str) -> None:
    store = FeedbackStore.open(postgres_url)
    store.record_exchanges([Exchange.example("r1")])
    postgres.stop()
    try:
        with pytest.raises(StoreError, match="database"):
            store.exchange("r1")
    finally:
        postgres.start()
    assert store.exchange("r1") is not None  # back, through the same engine
    store.close()
