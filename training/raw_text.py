"""The raw text of evaluation rows: what people wrote, beside the normalised CSV.

A data build writes ``valid.csv`` and ``test.csv`` in the UDC layout, normalised (stemmed,
lower-cased) as the dual encoder and TF-IDF read them. The sentence encoder
(:mod:`chatbot.sentence`) reads what the service gets, raw text; read from the stemmed
form ("it mean the devic will be there") it ranks worse than it serves. So each of those
files gets a sidecar, ``valid.raw.jsonl`` beside ``valid.csv``: one JSON object a row, in
the CSV's order::

    {"turns": ["my wifi stopped working", "which card?"], "candidates": ["try ...", ...]}

``turns`` are the context's turns, oldest first; ``candidates`` the true response, then the
distractors, as in the row. The official UDC files have none: their rows are read as they
are.

Example:
    >>> import tempfile
    >>> csv_path = Path(tempfile.mkdtemp()) / "valid.csv"
    >>> write_raw_text(raw_text_path(csv_path), [RawText(("Hi there",), ("Hello!", "No."))])
    >>> read_raw_text(csv_path)[0].candidates
    ('Hello!', 'No.')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from training.errors import DataError

SUFFIX = ".raw.jsonl"


@dataclass(frozen=True, slots=True)
class RawText:
    """One evaluation row as people wrote it: the context's turns, oldest first, and the
    candidates in the row's order (the true response first)."""

    turns: tuple[str, ...]
    candidates: tuple[str, ...]


def raw_text_path(csv_path: str | Path) -> Path:
    """The sidecar of ``csv_path``.

    Example:
        >>> raw_text_path("data/valid.csv").name
        'valid.raw.jsonl'
    """
    return Path(csv_path).with_suffix(SUFFIX)


def write_raw_text(path: Path, rows: Iterable[RawText]) -> None:
    """Writes ``rows`` to ``path`` (a sidecar, or its ``.part`` file), one JSON object a line."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            record = {"turns": list(row.turns), "candidates": list(row.candidates)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_raw_text(csv_path: str | Path) -> list[RawText] | None:
    """The sidecar of ``csv_path``, one :class:`RawText` a row; ``None`` without one.

    Raises:
        DataError: a line that is not such an object (file and line named).
    """
    path = raw_text_path(csv_path)
    return read_raw_file(path) if path.is_file() else None


def read_raw_file(path: Path) -> list[RawText]:
    """The rows of a raw-text file (a sidecar, or a data build's training pairs).

    Raises:
        DataError: a line that is not such an object (file and line named).
    """
    with path.open(encoding="utf-8") as f:
        return [_parse(path, number, line) for number, line in enumerate(f, 1)]


class HasRawText(Protocol):
    """A row that may carry its raw text (:class:`training.sources.udc_csv.EvalRow`)."""

    @property
    def raw(self) -> RawText | None: ...


def all_raw(rows: Sequence[HasRawText]) -> list[RawText] | None:
    """Every row's raw text; ``None`` unless each row has it (an official file, or a set
    mixing one with a data build's rows): the scorer then reads the normalised rows."""
    raws = [row.raw for row in rows]
    return None if not raws or None in raws else [r for r in raws if r is not None]


def raw_turns(rows: Sequence[HasRawText]) -> list[tuple[str, ...]] | None:
    """Each row's context turns as people wrote them (see :func:`all_raw`)."""
    raws = all_raw(rows)
    return None if raws is None else [r.turns for r in raws]


def raw_arguments(rows: Sequence[HasRawText], candidates: int | None = None) -> dict[str, Any]:
    """:meth:`chatbot.scoring.Scorer.parts`' ``raw_turns`` and ``raw_candidates`` for
    ``rows`` (their first ``candidates`` candidates, or all); empty as :func:`all_raw` says.

    Example:
        >>> from types import SimpleNamespace as Row
        >>> raw_arguments([Row(raw=RawText(("hi",), ("hello", "no")))], candidates=1)
        {'raw_turns': [('hi',)], 'raw_candidates': [('hello',)]}
        >>> raw_arguments([Row(raw=None)])
        {}
    """
    raws = all_raw(rows)
    if raws is None:
        return {}
    return {
        "raw_turns": [r.turns for r in raws],
        "raw_candidates": [r.candidates[:candidates] for r in raws],
    }


def _parse(path: Path, number: int, line: str) -> RawText:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, number, f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise DataError(path, number, "expected an object with turns and candidates")
    fields = {}
    for name in ("turns", "candidates"):
        value = record.get(name)
        if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
            raise DataError(path, number, f"{name}: expected a non-empty list of strings")
        fields[name] = tuple(value)
    return RawText(**fields)
