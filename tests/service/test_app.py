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


def _fail_to_load(settings: Settings, model_dir: Path, index_dir: Path, spares: list) -> None:
    raise FileNotFoundError(f"{model_dir}: no model artifact here")


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
            f"not ready: loading the model failed: FileNotFoundError: {settings.model_dir}: "
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


def test_startup_warms_the_ranker_before_it_is_ready(
    make_settings: Callable[..., Settings],
) -> None:
    ranker = FakeRanker()
    settings = make_settings(max_batch_size=16)

    with TestClient(create_app(settings, ranker=as_ranker(ranker))) as client:
        assert client.get("/readyz").status_code == 200

    assert ranker.warm_ups == [16]


def test_an_index_of_normalised_text_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from chatbot.artifact import load_artifact
    from chatbot.index import save_index
    from tests.helpers import tiny_artifact

    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    vectors = artifact.encoder().encode_responses(["hi __eou__", "bye __eou__"])
    for display in ("raw", "normalized"):
        save_index(tmp_path / display, vectors, ["Hi!", "Bye."], artifact, display=display)
        settings = Settings(model_dir=tmp_path / "model", index_dir=tmp_path / display)
        caplog.clear()
        with caplog.at_level("WARNING", logger="service.app"):
            app_module._load_ranker(settings, settings.model_dir, settings.index_dir, [])
        warned = [r.message for r in caplog.records if "normalised UDC CSV" in r.message]
        assert len(warned) == (display == "normalized")
