"""Startup: the app stays up and says why when the model cannot be loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import app as app_module
from service.app import create_app
from service.settings import Settings
from tests.service.fakes import FakeRanker, as_ranker


def _fail_to_load(settings: Settings) -> None:
    raise FileNotFoundError(f"{settings.model_dir}: no model artifact here")


def test_a_model_that_fails_to_load_leaves_the_app_alive_but_not_ready(
    monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    # Stands in for Ranker.load so the test needs neither TensorFlow nor an artifact.
    monkeypatch.setattr(app_module, "_load_ranker", _fail_to_load)
    settings = make_settings()

    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"] == (
            f"loading the model failed: FileNotFoundError: {settings.model_dir}: "
            "no model artifact here"
        )

        reply = client.post("/respond", json={"context": ["hi"]})
        assert reply.status_code == 503
        assert reply.json()["detail"].startswith("not ready: loading the model failed")


def test_settings_come_from_chatbot_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHATBOT_MODEL_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("CHATBOT_INDEX_DIR", str(tmp_path / "i"))
    monkeypatch.setenv("CHATBOT_BACKEND", "faiss-hnsw")
    monkeypatch.setenv("CHATBOT_BATCH_WINDOW_MS", "5")
    monkeypatch.setenv("CHATBOT_SHARED_DATA", "/data")  # another tool's variable: ignored

    settings = Settings()  # type: ignore[call-arg]

    assert settings.model_dir == tmp_path / "m"
    assert settings.backend == "faiss-hnsw"
    assert settings.batch_window_ms == 5
    assert (settings.max_turns, settings.max_chars, settings.max_k) == (50, 10_000, 50)
    assert settings.max_batch_size == 64


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@pytest.mark.parametrize("max_batch_size", [1, 6, 48, 64])
def test_the_warm_up_meets_every_padded_shape(max_batch_size: int) -> None:
    # What chatbot/encoder.py and chatbot/search.py pad to (restated: no TensorFlow here).
    buckets, cap, markers = (16, 32, 64, 128), 160, 2  # "__eou__ __eot__" end a turn

    def length(words: int) -> int:
        return next((b for b in buckets if words + markers <= b), cap)

    def search_rows(n: int) -> int:
        return _next_power_of_two(n) if n <= 8 else -(-n // 8) * 8

    plan = app_module.warm_up_plan(max_batch_size, cap, buckets)

    sizes = range(1, max_batch_size + 1)
    encoder = {(_next_power_of_two(n), length(w)) for n, w in plan}
    assert encoder == {(_next_power_of_two(n), b) for n in sizes for b in (*buckets, cap)}
    assert {search_rows(n) for n, _ in plan} == {search_rows(n) for n in sizes}
    assert max(n for n, _ in plan) <= max_batch_size


def test_the_warm_up_goes_through_respond(ranker: FakeRanker) -> None:
    app_module.warm_up(as_ranker(ranker), max_batch_size=4)

    assert sorted({len(batch) for batch in ranker.batches}) == [1, 2, 4]
