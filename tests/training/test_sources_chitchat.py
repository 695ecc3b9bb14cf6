"""Chit-chat reader: the package's conversation layout, and its embedded corpus."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from training.errors import BadRowCounter, DataError
from training.sources.chitchat import read_chitchat


def message(sender: str, text: str) -> dict[str, str]:
    return {"text": text, "timestamp": "2018-05-02T19:38:15Z", "sender": sender}


CONVERSATIONS = {
    "c1": {
        "messages": [
            [message("s1", "hello"), message("s1", "how are you?")],
            [message("s2", "fine thanks")],
            [message("s1", "great")],
        ]
    },
    "c2": {"messages": [[message("s1", "anyone there?")]]},  # one speaker: dropped
}


def test_reads_turns_and_date(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(CONVERSATIONS))
    dialogues = list(read_chitchat(path))
    assert [(d.id, d.date) for d in dialogues] == [("c1", dt.date(2018, 5, 2))]
    assert dialogues[0].turns == (("hello", "how are you?"), ("fine thanks",), ("great",))


def test_malformed_conversation_raises_or_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({**CONVERSATIONS, "c3": {"messages": [[{"text": "no sender"}]]}}))
    with pytest.raises(DataError, match="c3"):
        list(read_chitchat(path))
    counter = BadRowCounter(skip=True)
    assert [d.id for d in read_chitchat(path, counter)] == ["c1"]
    assert counter.count == 1


def test_embedded_corpus() -> None:
    dialogues = list(read_chitchat())
    assert len(dialogues) > 3000
    assert all(d.n_turns >= 3 and d.date for d in dialogues)
