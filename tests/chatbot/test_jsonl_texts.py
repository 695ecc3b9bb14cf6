from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.jsonl_texts import JsonlTexts, write_jsonl

TEXTS = ["plain", "two\nlines", 'quotes "and" \\ backslash', "ünïcödé ✓", ""]


def test_texts_read_back_one_by_one_sliced_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_jsonl(path, TEXTS)
    texts = JsonlTexts(path)
    assert len(texts) == len(TEXTS)
    assert [texts[i] for i in range(len(TEXTS))] == TEXTS
    assert texts[-1] == "" and texts[1:3] == TEXTS[1:3] and texts[::-2] == TEXTS[::-2]
    assert texts == TEXTS and list(texts) == TEXTS and texts != TEXTS[:-1]
    with pytest.raises(IndexError):
        texts[len(TEXTS)]


def test_an_empty_file_and_a_last_line_without_newline(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert len(JsonlTexts(empty)) == 0
    cut = tmp_path / "cut.jsonl"
    cut.write_text('"a"\n"b"')
    assert JsonlTexts(cut) == ["a", "b"]


def test_a_damaged_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('"fine"\n{"not": "a string"}\n"x\n')
    texts = JsonlTexts(path)
    assert texts[0] == "fine"
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON string"):
        texts[1]
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not a JSON string"):
        texts[2]
