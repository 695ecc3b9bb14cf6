"""``build_index``: what the index shows, and what it says about it."""

from __future__ import annotations

import json
from pathlib import Path

from chatbot.artifact import load_artifact
from chatbot.index import load_index
from tests.helpers import tiny_artifact
from training.indexing import build_index
from training.sources.udc_csv import TRAIN_HEADER, write_csv


def test_raw_responses_are_shown_as_written_and_csv_ones_are_flagged(tmp_path: Path) -> None:
    model = tiny_artifact(tmp_path / "model")
    raw = tmp_path / "responses.jsonl"
    raw.write_text(json.dumps({"text": "Fine, THANKS!\nBye", "normalized": "fine thanks __eou__"}))
    build_index(model, raw, tmp_path / "raw")
    csv = tmp_path / "train.csv"
    write_csv(csv, TRAIN_HEADER, [("hi __eou__ __eot__", "fine thanks __eou__ bye __eou__", 1)])
    build_index(model, csv, tmp_path / "csv")

    artifact = load_artifact(model)
    shown = load_index(tmp_path / "raw", artifact)
    assert shown.texts == ["Fine, THANKS!\nBye"] and not shown.shows_normalized_text
    assert shown.normalized == ["fine thanks __eou__"]
    flagged = load_index(tmp_path / "csv", artifact)
    assert flagged.texts == ["fine thanks\nbye"] and flagged.shows_normalized_text
