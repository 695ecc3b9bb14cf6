"""Candidate responses for a response index, from a UDC-layout CSV, plain text or JSONL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from chatbot.text import EOU, Normalizer
from training.errors import BadRowCounter, DataError
from training.sources.udc_csv import detect_layout, read_eval_rows, read_train_rows

FORMATS = ("auto", "csv", "text", "jsonl")


def _csv_responses(path: Path, bad: BadRowCounter | None) -> Iterator[str]:
    if detect_layout(path) == "train":
        for row in read_train_rows(path, bad):
            yield row.response
    else:
        for eval_row in read_eval_rows(path, bad):
            yield eval_row.response
            yield from eval_row.distractors


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(path, number, f"not UTF-8 ({exc.reason})") from exc


def _jsonl_responses(path: Path) -> Iterator[str]:
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, f"not JSON ({exc.msg})") from exc
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, number, 'expected a string or {"text": "..."}')
        yield text


def display_text(normalized: str) -> str:
    """A normalised UDC response as shown to a person: utterance markers become line breaks."""
    return "\n".join(u.strip() for u in normalized.split(EOU) if u.strip())


def read_responses(
    path: Path, fmt: str, normalizer: Normalizer, bad: BadRowCounter | None = None
) -> tuple[list[str], list[str]]:
    """Distinct responses of a file, first occurrence first: (display texts, normalised texts).

    A UDC-layout CSV is already normalised (all its distinct responses, ground truths and
    distractors alike); plain text (one response a line) and JSONL (a string or
    ``{"text": ...}`` a line) are raw text, normalised with the model's ``normalizer``.
    """
    if fmt == "auto":
        fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix, "text")
    texts: Iterable[str]
    if fmt == "csv":
        seen = dict.fromkeys(_csv_responses(path, bad))
        normalized = list(seen)
        return [display_text(t) for t in normalized], normalized
    if fmt == "jsonl":
        texts = _jsonl_responses(path)
    elif fmt == "text":
        texts = (line for _, line in _text_lines(path) if line.strip())
    else:
        raise ValueError(f"unknown response format {fmt!r}; expected one of {FORMATS}")
    raw = list(dict.fromkeys(t.strip() for t in texts))
    return raw, [normalizer.response(t) for t in raw]
