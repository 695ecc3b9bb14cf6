"""Admin endpoints: the bearer token, CORS, status, reload and live repository edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from chatbot import bundles
from service.app import create_app
from service.settings import Settings
from tests.helpers import tiny_bundle
from tests.service.conftest import MakeClient

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_without_a_configured_token_admin_endpoints_are_off(client: TestClient) -> None:
    reply = client.get("/admin/status", headers=AUTH)
    assert reply.status_code == 403
    assert "CHATBOT_ADMIN_TOKEN" in reply.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}]
)
def test_a_missing_or_wrong_token_gets_401(make_client: MakeClient, headers: dict) -> None:
    client = make_client(admin_token=TOKEN)
    reply = client.post("/admin/reload", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in reply.json()["detail"]


def test_the_right_token_gets_the_status(make_client: MakeClient) -> None:
    client = make_client(admin_token=TOKEN)
    status = client.get("/admin/status", headers=AUTH).json()
    assert status["serving"] == "fake-20260101-00000000"
    assert (status["repository"], status["refused"], status["responses"]) == (None, {}, 5)


def test_reload_and_edits_need_a_repository(make_client: MakeClient) -> None:
    client = make_client(admin_token=TOKEN)
    assert client.post("/admin/reload", headers=AUTH).status_code == 409
    reply = client.post("/admin/responses", headers=AUTH, json={"add": ["hello"]})
    assert reply.status_code == 409 and "--repository" in reply.json()["detail"]


def test_admin_endpoints_are_left_out_of_cors(make_client: MakeClient) -> None:
    client = make_client(admin_token=TOKEN)
    preflight = {"Origin": "https://example.com", "Access-Control-Request-Method": "POST"}
    public = client.options("/respond", headers=preflight)
    admin = client.options("/admin/reload", headers=preflight)
    assert public.headers.get("access-control-allow-origin") == "*"
    assert "access-control-allow-origin" not in admin.headers
    assert admin.status_code >= 400
    status = client.get("/admin/status", headers={**AUTH, "Origin": "https://example.com"})
    assert "access-control-allow-origin" not in status.headers


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    model, index = tiny_bundle(tmp_path / "bundle")
    repo = tmp_path / "repo"
    bundles.publish(repo, model, index)
    return repo


def _app(repo: Path) -> TestClient:
    settings = Settings(repository=repo, poll_s=0, admin_token=TOKEN, max_batch_size=2)  # type: ignore[arg-type]
    return TestClient(create_app(settings))


def _texts(client: TestClient, context: str) -> list[str]:
    reply = client.post("/respond", json={"context": [context], "k": 10}).json()
    return [item["text"] for item in reply["responses"]]


def test_an_edit_publishes_a_version_that_serves_and_survives_a_restart(repository: Path) -> None:
    with _app(repository) as client:
        assert client.get("/readyz").json()["model"] == "v000001"
        edit = {"add": ["See you later, alligator!"], "remove": ["My name is Bot."]}

        reply = client.post("/admin/responses", headers=AUTH, json=edit)

        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "version": "v000002",
            "added": 1,
            "removed": 1,
            "unchanged": [],
            "not_found": [],
            "responses": 4,
        }
        texts = _texts(client, "see you later")
        assert "See you later, alligator!" in texts and "My name is Bot." not in texts
        assert client.post("/respond", json={"context": ["hi"]}).json()["model"] == "v000002"

    assert bundles.versions(repository) == ["v000001", "v000002"]  # the old one stays
    model_files = repository / "v000002" / "model"
    assert (model_files / "model.weights.h5").stat().st_nlink == 2  # linked, not copied
    with _app(repository) as client:
        assert client.get("/readyz").json()["model"] == "v000002"
        assert "See you later, alligator!" in _texts(client, "later")


def test_an_edit_that_cannot_apply_changes_nothing(repository: Path) -> None:
    with _app(repository) as client:
        texts = client.get("/admin/status", headers=AUTH).json()["responses"]
        every = ["Hello there!", "I am fine, thanks.", "My name is Bot.", "Good morning!"]
        assert texts == len(every)
        reply = client.post("/admin/responses", headers=AUTH, json={"remove": every})
        assert reply.status_code == 422
        assert "empty" in reply.json()["detail"]
        blank = client.post("/admin/responses", headers=AUTH, json={"add": [" "]})
        assert blank.status_code == 422
    assert bundles.versions(repository) == ["v000001"]


def test_reload_swaps_in_a_published_version_and_refuses_a_broken_one(
    repository: Path, tmp_path: Path
) -> None:
    other_model, other_index = tiny_bundle(tmp_path / "other", seed=3)
    with _app(repository) as client:
        bundles.publish(repository, other_model, other_index)
        reply = client.post("/admin/reload", headers=AUTH).json()
        assert (reply["serving"], reply["swapped"]) == ("v000002", True)

        broken = repository / "v000003"
        shutil.copytree(repository / "v000001", broken)
        (broken / "index" / "texts.jsonl").write_text('"tampered"\n' * 4)
        reply = client.post("/admin/reload", headers=AUTH).json()

        assert (reply["serving"], reply["swapped"]) == ("v000002", False)
        assert "texts.jsonl is damaged" in reply["refused"]["v000003"]
        status = client.get("/admin/status", headers=AUTH).json()
        assert status["newest"] == "v000003" and "v000003" in status["refused"]
        metrics = client.get("/metrics").text
        assert "chatbot_bundles_refused_total 1.0" in metrics
        assert "chatbot_bundle_swaps_total 1.0" in metrics
        assert client.post("/respond", json={"context": ["hi"]}).status_code == 200


def test_a_model_with_a_semantic_part_serves_and_edits_its_repository(tmp_path: Path) -> None:
    from chatbot.index import load_index

    model, index = tiny_bundle(tmp_path / "bundle", semantic=True)
    repo = tmp_path / "repo"
    bundles.publish(repo, model, index)
    with _app(repo) as client:
        assert len(_texts(client, "Hello, how are you?")) == 4
        edit = {"add": ["See you later, alligator!"], "remove": ["My name is Bot."]}
        assert client.post("/admin/responses", headers=AUTH, json=edit).status_code == 200
        assert "See you later, alligator!" in _texts(client, "see you later")
    edited = load_index(repo / "v000002" / "index")
    assert edited.sentence is not None and edited.sentence.shape == (4, 8)
    # The kept rows keep their vectors; the added one is its shown text's.
    original = load_index(index)
    kept = [list(original.texts).index(t) for t in edited.texts[:3]]
    np.testing.assert_array_equal(edited.sentence[:3], original.sentence[kept])
