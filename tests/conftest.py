"""Shared fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, find_bin, postgres_server

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder: ``$CHATBOT_SHARED_DATA`` or ``<repo>/../shared/data``.

    Absent data skips the test on a developer machine but fails it in CI, where it must exist.
    """
    path = Path(os.environ.get("CHATBOT_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {path} (required in CI)")
        pytest.skip("../shared/data not found: set CHATBOT_SHARED_DATA")
    return path


@pytest.fixture(autouse=True)
def feedback_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test's service keeps its exchanges, votes and sessions in its own SQLite file
    (the default, ``artifacts/feedback.sqlite3``, would land in the checkout)."""
    url = f"sqlite:///{tmp_path / 'feedback.sqlite3'}"
    monkeypatch.setenv("CHATBOT_DATABASE_URL", url)
    return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (required in CI, skipped elsewhere without
    Debian's ``postgresql`` package)."""
    bin_dir = find_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(
                "PostgreSQL's pg_ctl not found (required in CI): apt-get install postgresql"
            )
        pytest.skip("PostgreSQL not installed: apt-get install postgresql to run these tests")
    with postgres_server(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's server, for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    return postgres.database(name)
