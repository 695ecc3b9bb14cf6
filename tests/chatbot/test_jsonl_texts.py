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


@pytest.mark.parametrize("block", [1, 3, 1 << 24])
def test_lines_are_counted_as_they_are_indexed(tmp_path: Path, monkeypatch, block: int) -> None:
    # Small blocks put newlines at block edges; the count keeps no offsets (serving's case).
    monkeypatch.setattr("chatbot.jsonl_texts._BLOCK", block)
    cases = {"none": b"", "one": b'"a"', "one, ended": b'"a"\n', "empty line": b'""\n',
             "three": b'"a"\n"bc"\n""', "ended twice": b'"a"\n\n'}  # fmt: skip
    for name, content in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(content)
        counted = JsonlTexts(path).line_count()
        texts = JsonlTexts(path)
        assert counted == len(texts) == texts.line_count(), name
    texts = JsonlTexts(tmp_path / "three.jsonl")
    assert list(texts) == ["a", "bc", ""]
