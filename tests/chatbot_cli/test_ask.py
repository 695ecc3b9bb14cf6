"""``chatbot ask``: the served replies to a file of questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.artifact import load_artifact
from chatbot.index import save_index
from chatbot_cli import main
from tests.helpers import tiny_artifact


def test_asks_every_question_and_writes_the_replies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    replies = ["Fine, thanks!", "My name is Bot.", "Good morning!"]
    vectors = artifact.encoder().encode_responses([r.lower() + " __eou__" for r in replies])
    save_index(tmp_path / "index", vectors, replies, artifact)
    questions = tmp_path / "q.txt"
    questions.write_text("# a comment\nhow are you?\n\nwhat is your name?\n")
    out = tmp_path / "answers.jsonl"
    argv = ["ask", "--model", str(tmp_path / "model"), "--index", str(tmp_path / "index")]
    assert main([*argv, "--questions", str(questions), "-k", "2", "--out", str(out)]) == 0

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question"] for r in records] == ["how are you?", "what is your name?"]
    assert all(len(r["replies"]) == 2 and r["replies"][0]["text"] in replies for r in records)
    printed = capsys.readouterr().out
    assert "  1. how are you?" in printed and "  2. what is your name?" in printed


def test_an_empty_question_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "q.txt").write_text("# nothing here\n")
    argv = ["ask", "--model", "m", "--index", "i", "--questions", str(tmp_path / "q.txt")]
    assert main(argv) == 2
    assert "no questions" in capsys.readouterr().err
