"""The whole flow on generated dialogues: build data -> train -> export -> reload -> eval ->
index -> serve. Each arrow is the public function or command a user runs."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from fastapi.testclient import TestClient

from chatbot_cli import main as chatbot
from training.build import BuildOptions, build_dataset
from training.dialogue import Dialogue

TOPICS = {
    "printer": ["printer", "paper", "ink", "jam", "print"],
    "wifi": ["wifi", "router", "signal", "network", "password"],
    "sound": ["sound", "speaker", "volume", "audio", "mute"],
    "disk": ["disk", "partition", "mount", "space", "drive"],
}


def _dialogues(n: int, seed: int = 0) -> list[Dialogue]:
    """Hand-made support chats: every turn of a dialogue talks about its topic."""
    rng = random.Random(seed)
    start = dt.date(2020, 1, 1)
    out = []
    for i in range(n):
        words = TOPICS[rng.choice(sorted(TOPICS))]
        turns = tuple(
            (f"my {rng.choice(words)} has a {rng.choice(words)} problem",)
            if t % 2 == 0
            else (f"try the {rng.choice(words)} and check the {rng.choice(words)}",)
            for t in range(rng.randint(3, 6))
        )
        out.append(Dialogue(f"d{i}", start + dt.timedelta(days=i), turns))
    return out


@pytest.mark.slow
def test_build_train_export_evaluate_index_serve(tmp_path, capsys):
    data, model, index = tmp_path / "data", tmp_path / "model", tmp_path / "index"
    options = BuildOptions(normalization="tokenize", examples=3000, positives_only=True)
    summary = build_dataset(_dialogues(400), data, options)
    assert summary.train_pairs == 3000

    assert (
        chatbot(
            [
                "train",
                "--preset",
                "tiny",
                "--train",
                str(data / "train.csv"),
                "--valid",
                str(data / "valid.csv"),
                "--out",
                str(model),
                "--max-steps",
                "150",
                "--eval-every",
                "50",
            ]
        )
        == 0
    )
    assert (model / "saved_model" / "saved_model.pb").exists()

    report = tmp_path / "eval.json"
    assert (
        chatbot(
            [
                "eval",
                "--model",
                str(model),
                "--data",
                str(data / "test.csv"),
                "--baselines",
                "tfidf,random",
                "--json",
                str(report),
                "--plot",
                str(tmp_path / "eval.png"),
            ]
        )
        == 0
    )
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"model", "tfidf", "random"}
    # Four topics: a model that learned them ranks the true response first far above 1 in 10.
    assert results["model"]["recall@1"] > 0.2
    assert "recall@1" in capsys.readouterr().out

    responses = tmp_path / "responses.txt"
    responses.write_text("check the printer ink\nrestart the wifi router\nturn up the volume\n")
    assert (
        chatbot(
            ["index", "--model", str(model), "--responses", str(responses), "--out", str(index)]
        )
        == 0
    )

    from service.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(model_dir=model, index_dir=index))) as client:
        assert client.get("/readyz").status_code == 200
        reply = client.post("/respond", json={"context": ["my printer has a jam"], "k": 3})
        assert reply.status_code == 200
        texts = [r["text"] for r in reply.json()["responses"]]
        assert sorted(texts) == sorted(responses.read_text().splitlines())
        assert reply.json()["model"].startswith("tiny-")
