"""Fixtures: the service with a fake ranker injected through ``create_app(..., ranker=...)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.fakes import FakeRanker, as_ranker

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings whose model and index directories are never read (the ranker is injected)."""

    def make(**overrides: Any) -> Settings:
        return Settings(model_dir=tmp_path / "model", index_dir=tmp_path / "index", **overrides)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[MakeClient]:
    """``make_client(ranker, **settings)``: a started app (lifespan run) around ``ranker``."""
    with ExitStack() as stack:

        def make(ranker: FakeRanker | None = None, **overrides: Any) -> TestClient:
            fake = as_ranker(ranker or FakeRanker())
            app = create_app(make_settings(**overrides), ranker=fake)
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture
def ranker() -> FakeRanker:
    return FakeRanker()


@pytest.fixture
def client(make_client: MakeClient, ranker: FakeRanker) -> TestClient:
    return make_client(ranker)
