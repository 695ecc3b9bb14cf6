"""Helpers shared by the raw-dialogue readers: dates, UTF-8 checks, the two-party filter."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from training.dialogue import Dialogue, group_turns

# Long IRC and UDC contexts can exceed csv's default 128 KiB field limit; a field this large
# is still far below anything that would strain memory. Set once, for every reader.
csv.field_size_limit(max(csv.field_size_limit(), 16 * 1024 * 1024))

MIN_TURNS = 3  # the UDC recipe drops shorter dialogues: a context needs 2 turns plus a response

# Bytes that are not UTF-8 come through ``errors="surrogateescape"`` as lone surrogates, so a
# bad row is found (and can be skipped) after the csv module has split the file into rows.
_UNDECODED = re.compile("[\udc80-\udcff]")


def open_text(path: str | Path) -> TextIO:
    """Opens a text file for the csv module, keeping undecodable bytes for :func:`bad_utf8`."""
    return open(path, encoding="utf-8", errors="surrogateescape", newline="")


def bad_utf8(fields: Iterable[str]) -> bool:
    """Whether any field held bytes that are not UTF-8 (see :func:`open_text`)."""
    return any(_UNDECODED.search(f) for f in fields)


def parse_date(value: str) -> dt.date:
    """The date of an ISO timestamp such as ``2008-04-23T14:55:00.000Z`` or ``2008-04-23``.

    Raises:
        ValueError: the value is not an ISO date or timestamp.

    Example:
        >>> parse_date("2008-04-23T14:55:00.000Z")
        datetime.date(2008, 4, 23)
    """
    return dt.datetime.fromisoformat(value.strip()).date()


def two_party_dialogue(
    dialogue_id: str, date: dt.date | None, messages: list[tuple[str, str]]
) -> Dialogue | None:
    """A :class:`Dialogue` from ``(speaker, text)`` messages, or ``None`` if UDC would drop it.

    UDC keeps only dialogues between exactly two people with at least three turns.

    Example:
        >>> two_party_dialogue("d", None, [("a", "hi"), ("b", "yo"), ("a", "ok")]).n_turns
        3
    """
    if len({speaker for speaker, text in messages if text.strip()}) != 2:
        return None
    turns = group_turns(messages)
    if len(turns) < MIN_TURNS:
        return None
    return Dialogue(dialogue_id, date, turns)
