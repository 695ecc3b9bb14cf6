"""The HTTP API against a fake word-overlap ranker (see fakes.py for how it scores)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import MakeClient
from tests.service.fakes import BrokenRanker, FakeRanker

# Context words {which, package, should, i, install, for, the, network} overlap the repository:
#   "sudo apt-get install the package you need"  install, the, package -> 3
#   "try restarting the network manager"          the, network          -> 2
#   "hello there, how can I help?"                i                     -> 1
#   "look in /var/log/syslog for errors"          for                   -> 1 (tie: repository order)
#   "you are welcome"                                                   -> 0
QUESTION = "which package should I install for the network"


def test_respond_returns_the_best_repository_responses_first(client: TestClient) -> None:
    reply = client.post("/respond", json={"context": [QUESTION], "k": 3})

    assert reply.status_code == 200
    body = reply.json()
    assert body["responses"] == [
        {"text": "sudo apt-get install the package you need", "score": 3.0},
        {"text": "try restarting the network manager", "score": 2.0},
        {"text": "hello there, how can I help?", "score": 1.0},
    ]
    assert body["model"] == FakeRanker.model_version
    assert body["took_ms"] >= 0


def test_respond_defaults_to_five_responses(client: TestClient) -> None:
    assert len(client.post("/respond", json={"context": [QUESTION]}).json()["responses"]) == 5


def test_string_context_reaches_the_ranker_as_turns(client: TestClient, ranker: FakeRanker) -> None:
    context = "my wifi is down __eou__ __eot__ try a reboot __eou__ __eot__ ok __eou__ done __eou__"

    assert client.post("/respond", json={"context": context}).status_code == 200
    assert ranker.batches == [[["my wifi is down", "try a reboot", "ok done"]]]


def test_candidates_are_ranked_instead_of_the_repository(
    client: TestClient, ranker: FakeRanker
) -> None:
    # Context words {thanks, a, lot}: 3, 1 and 0 of them appear in the candidates below.
    candidates = ["no problem", "thanks, you are welcome", "a lot of thanks to you"]
    body = {"context": ["thanks a lot"], "candidates": candidates, "k": 2}

    reply = client.post("/respond", json=body).json()

    assert reply["responses"] == [
        {"text": "a lot of thanks to you", "score": 3.0},
        {"text": "thanks, you are welcome", "score": 1.0},
    ]
    assert ranker.batches == []  # the repository was not searched


def test_k_above_the_number_of_candidates_returns_them_all(client: TestClient) -> None:
    body = {"context": ["hi"], "candidates": ["a", "b"], "k": 10}
    assert len(client.post("/respond", json=body).json()["responses"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"context": []}, 422, "context: must hold at least one turn"),
        ({"context": ""}, 422, "context: must hold at least one turn"),
        ({"context": " \n "}, 422, "context: must hold at least one turn"),
        ({"context": ["hi", "  "]}, 422, "context: turn 1 is empty"),
        ({"context": ["hi"] * 51}, 422, "context: 51 turns; at most 50"),
        ({"context": ["x", "y" * 10_001]}, 422, "context: turn 1 has 10001 characters"),
        ({"context": "y" * 10_001}, 422, "context: context has 10001 characters; at most 10000"),
        (
            {"context": ["hi"], "candidates": ["a"] * 101},
            422,
            "candidates: List should have at most 100",
        ),
        ({"context": ["hi"], "k": 3.5}, 422, "k: Input should be a valid integer"),
        ({"context": ["hi"], "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"context": ["hi"], "k": 51}, 422, "k: Input should be less than or equal to 50"),
        ({"context": ["hi"], "k": "3"}, 422, "k: Input should be a valid integer"),
        ({"context": ["hi"], "k": True}, 422, "k: Input should be a valid integer"),
        ({"context": [1, "hi"]}, 422, "context[0]: Input should be a valid string"),
        ({"context": 7}, 422, "context: must be a list of turns or a string"),
        ({"context": ["hi"], "candidates": []}, 422, "candidates: List should have at least 1"),
        ({"context": ["hi"], "candidates": ["a", ""]}, 422, "candidates: candidate 1 is empty"),
        ({"context": ["hi"], "temperature": 1}, 422, "unknown field 'temperature'"),
        ({}, 422, "context: Field required"),
        (["hi"], 422, "request body must be a JSON object"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    client: TestClient, body: object, status: int, message: str
) -> None:
    reply = client.post("/respond", json=body)

    assert reply.status_code == status
    assert message in reply.json()["detail"]


def test_validation_errors_are_also_listed_one_by_one(client: TestClient) -> None:
    errors = client.post("/respond", json={"context": [], "k": 0}).json()["errors"]
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["body", "context"], "empty_context"),
        (["body", "k"], "greater_than_equal"),
    ]


def test_body_that_is_not_json_gets_400(client: TestClient) -> None:
    reply = client.post(
        "/respond", content=b'{"context": [hi]}', headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("request body is not valid JSON: Expecting value")


def test_missing_body_gets_422(client: TestClient) -> None:
    reply = client.post("/respond")
    assert reply.status_code == 422
    assert "request body is missing" in reply.json()["detail"]


def test_k_is_capped_by_the_max_k_setting(make_client: MakeClient) -> None:
    reply = make_client(max_k=10).post("/respond", json={"context": ["hi"], "k": 11})
    assert reply.status_code == 422
    assert reply.json()["detail"] == "k: must be at most 10"


@pytest.mark.parametrize("candidates", [None, ["a", "b"]])
def test_a_failing_ranker_gives_a_json_503(
    make_client: MakeClient, candidates: list[str] | None
) -> None:
    client = make_client(BrokenRanker())
    body = {"context": ["boom"], "candidates": candidates}

    reply = client.post("/respond", json={k: v for k, v in body.items() if v is not None})

    assert reply.status_code == 503
    assert reply.json() == {"detail": "model error"}
    assert client.post("/respond", json={"context": ["fine"]}).status_code == 200


def test_healthz_and_readyz_when_loaded(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    version = FakeRanker.model_version
    assert ready.json() == {
        "status": "ready",
        "model": version,
        "model_version": version,
        "calibrated": False,  # the fake has no fitted curves: σ(score)
    }


def test_metrics_count_requests_by_status_and_batch_sizes(client: TestClient) -> None:
    client.post("/respond", json={"context": ["hi"]})
    client.post("/respond", json={"context": ["hi"]})
    client.post("/respond", json={"context": []})

    text = client.get("/metrics").text

    assert 'chatbot_requests_total{route="/respond",status="200"} 2.0' in text
    assert 'chatbot_requests_total{route="/respond",status="422"} 1.0' in text
    assert 'chatbot_request_seconds_count{route="/respond"} 3.0' in text
    assert "chatbot_batch_size_count 2.0" in text
    assert "chatbot_model_seconds_count 2.0" in text
    # Normalised in the handler, per request; the model thread's stages per model call.
    assert 'chatbot_stage_seconds_count{stage="normalise"} 2.0' in text
    assert 'chatbot_stage_seconds_count{stage="encode"} 2.0' in text


def test_metrics_count_unmatched_paths_under_one_label(client: TestClient) -> None:
    assert client.get("/no/such/page").status_code == 404

    text = client.get("/metrics").text

    assert 'chatbot_requests_total{route="unmatched",status="404"} 1.0' in text
    assert 'chatbot_requests_total{route="/healthz"' not in text


def test_apps_do_not_share_metrics(make_client: MakeClient) -> None:
    first, second = make_client(), make_client()
    first.post("/respond", json={"context": ["hi"]})
    assert 'route="/respond"' not in second.get("/metrics").text


def test_docs_and_openapi_describe_respond(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/respond" in schema["paths"]
    assert "/metrics" not in schema["paths"]


def test_chat_page_and_widget_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "/static/widget.js" in page.text
    script = client.get("/static/widget.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/static/widget.css").status_code == 200


def test_other_sites_may_post_to_respond(client: TestClient) -> None:
    preflight = client.options(
        "/respond",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
