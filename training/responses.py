"""Candidate responses for a response index, from a UDC-layout CSV, plain text or JSONL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


def _jsonl_responses(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(text, normalised text or None)`` of each line: a string, or ``{"text": ...}`` with
    an optional ``"normalized"`` (as data builds write it)."""
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
        normalized = item.get("normalized") if isinstance(item, dict) else None
        if normalized is not None and (not isinstance(normalized, str) or not normalized.strip()):
            raise DataError(path, number, '"normalized" must be a non-empty string')
        yield text.strip(), normalized


def display_text(normalized: str) -> str:
    """A normalised UDC response as shown to a person: utterance markers become line breaks."""
    return "\n".join(u.strip() for u in normalized.split(EOU) if u.strip())


@dataclass(frozen=True)
class Responses:
    """Distinct candidate responses: what is shown, and what the model sees.

    Attributes:
        shown: the texts shown to users.
        normalized: the same, normalised.
        display: ``raw`` when ``shown`` is what people wrote, ``normalized`` when a UDC CSV
            only had the normalised (stemmed) form to show.
    """

    shown: list[str]
    normalized: list[str]
    display: str

    def __len__(self) -> int:
        return len(self.shown)

    def head(self, n: int | None) -> Responses:
        """The first ``n`` responses (all of them for ``None``)."""
        return Responses(self.shown[:n], self.normalized[:n], self.display)


def read_responses(
    path: Path, fmt: str, normalizer: Normalizer, bad: BadRowCounter | None = None
) -> Responses:
    """Distinct responses of a file, first occurrence first.

    A UDC-layout CSV is already normalised (all its distinct responses, ground truths and
    distractors alike): only its normalised form can be shown. Plain text (one response a
    line) and JSONL (a string or ``{"text": ...}`` a line) are raw text, normalised with the
    model's ``normalizer``.
    """
    if fmt == "auto":
        fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix, "text")
    if fmt == "csv":
        seen = dict.fromkeys(_csv_responses(path, bad))
        normalized = list(seen)
        return Responses([display_text(t) for t in normalized], normalized, "normalized")
    entries: Iterable[tuple[str, str | None]]
    if fmt == "jsonl":
        entries = _jsonl_responses(path)
    elif fmt == "text":
        entries = ((line.strip(), None) for _, line in _text_lines(path) if line.strip())
    else:
        raise ValueError(f"unknown response format {fmt!r}; expected one of {FORMATS}")
    unique: dict[str, str | None] = {}
    for text, given in entries:
        unique.setdefault(text, given)
    raw = list(unique)
    # A data build's own normalised form is what the model trained on: it wins.
    return Responses(raw, [unique[t] or normalizer.response(t.split("\n")) for t in raw], "raw")
