"""Readers for raw Ubuntu Dialogue Corpus dialogues, the input of the UDC v2 generator.

Three layouts are read, each streaming except the JSON one:

* :func:`read_udc_tsv_dir`: the UDC v1 raw tree, one ``date<TAB>from<TAB>to<TAB>text`` file per
  dialogue (no header); the dialogue id is the file's path relative to the root.
* :func:`read_udc_csv`: the Kaggle ``dialogueText.csv`` layout
  (``folder,dialogueID,date,from,to,text``, one message a row, the rows of a dialogue
  contiguous), or the same without ``folder``.
* :func:`read_pimlico_json`: a JSON list of ``{dialogue_id, timestamp, text}`` whose ``text`` is
  the utterances joined by newlines, speakers dropped: each line is taken as a turn, speakers
  alternating.

Like UDC, only dialogues between exactly two people with at least three turns are kept. A
malformed row raises :class:`~training.errors.DataError`; with ``BadRowCounter(skip=True)`` it
is skipped and counted.

Example::

    dialogues = read_udc_csv("dialogueText.csv")
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from training.dialogue import Dialogue
from training.errors import BadRowCounter, DataError
from training.sources._common import bad_utf8, open_text, parse_date, two_party_dialogue

CSV_COLUMNS = ("dialogueID", "date", "from", "to", "text")  # plus an optional leading "folder"


_Message = tuple[str, dt.date, str, str]  # dialogue id, date, speaker, text


def read_udc_tsv_dir(root: str | Path, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
    """Dialogues of a UDC v1 raw tree: every ``*.tsv`` under ``root``, in path order.

    Args:
        root: folder holding one TSV file per dialogue, in any number of sub-folders.
        bad: skips and counts malformed lines when its ``skip`` is on; raises otherwise.

    Returns:
        Two-party dialogues of 3+ turns; id = relative path, date = the first line's date.

    Example::

        next(read_udc_tsv_dir("dialogs")).id
        # -> '3/126125.tsv'
    """
    root = Path(root)
    bad = bad or BadRowCounter()
    for path in sorted(root.rglob("*.tsv")):
        messages = list(_tsv_messages(path, path.relative_to(root).as_posix(), bad))
        if messages:
            dialogue = two_party_dialogue(messages[0][0], messages[0][1], _speaker_texts(messages))
            if dialogue:
                yield dialogue


def _tsv_messages(path: Path, dialogue_id: str, bad: BadRowCounter) -> Iterator[_Message]:
    with open_text(path) as lines:
        for lineno, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").split("\t", 3)
            if fields == [""]:
                continue
            try:
                yield _message(dialogue_id, fields, expected=4)
            except ValueError as exc:
                bad.bad(DataError(path, lineno, str(exc)))


def read_udc_csv(path: str | Path, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
    """Dialogues of a Kaggle-style ``dialogueText.csv``, in file order.

    Args:
        path: CSV with header ``folder,dialogueID,date,from,to,text`` or
            ``dialogueID,date,from,to,text``; the rows of one dialogue must be contiguous.
        bad: skips and counts malformed rows when its ``skip`` is on; raises otherwise.

    Returns:
        Two-party dialogues of 3+ turns; id = ``folder/dialogueID`` (or ``dialogueID``), date =
        the first message's date.

    Example::

        next(read_udc_csv("dialogueText.csv")).id
        # -> '3/126125.tsv'
    """
    bad = bad or BadRowCounter()
    for dialogue_id, group in groupby(_csv_messages(Path(path), bad), key=lambda m: m[0]):
        messages = list(group)
        dialogue = two_party_dialogue(dialogue_id, messages[0][1], _speaker_texts(messages))
        if dialogue:
            yield dialogue


def _csv_messages(path: Path, bad: BadRowCounter) -> Iterator[_Message]:
    with open_text(path) as f:
        reader = csv.reader(f)
        has_folder = _check_header(path, next(reader, None))
        while True:
            start = reader.line_num + 1  # report where a (possibly multi-line) row begins
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                bad.bad(DataError(path, start, f"malformed CSV: {exc}"))
                continue
            try:
                yield _csv_message(row, has_folder)
            except ValueError as exc:
                bad.bad(DataError(path, start, str(exc)))


def _check_header(path: Path, header: list[str] | None) -> bool:
    """Whether the header has the ``folder`` column; raises if it is neither layout."""
    if header and tuple(header) in (CSV_COLUMNS, ("folder", *CSV_COLUMNS)):
        return header[0] == "folder"
    expected = ",".join(CSV_COLUMNS)
    raise DataError(path, 1, f"expected header [folder,]{expected}, got {header!r}")


def _csv_message(row: list[str], has_folder: bool) -> _Message:
    if not has_folder:
        return _message(row[0] if row else "", row[1:], expected=4)
    if len(row) != len(CSV_COLUMNS) + 1:
        raise ValueError(f"expected {len(CSV_COLUMNS) + 1} fields, got {len(row)}")
    return _message(f"{row[0]}/{row[1]}", row[2:], expected=4)


def _message(dialogue_id: str, fields: list[str], expected: int) -> _Message:
    """Checks ``date, from, to, text`` fields; raises ValueError saying what is wrong."""
    if len(fields) != expected:
        raise ValueError(f"expected {expected} message fields, got {len(fields)}")
    if bad_utf8([dialogue_id, *fields]):
        raise ValueError("invalid UTF-8")
    when, speaker, _addressee, text = fields
    if not dialogue_id.strip() or not when.strip() or not speaker.strip():
        raise ValueError("missing dialogue id, date or speaker")
    try:
        date = parse_date(when)
    except ValueError:
        raise ValueError(f"unparseable date {when!r}") from None
    return dialogue_id, date, speaker, text


def _speaker_texts(messages: list[_Message]) -> list[tuple[str, str]]:
    return [(speaker, text) for _, _, speaker, text in messages]


def read_pimlico_json(path: str | Path, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
    """Dialogues of a JSON list of ``{dialogue_id, timestamp, text}`` (loaded whole).

    Speakers were dropped from this layout, so each line of ``text`` is taken as one turn and
    speakers are assumed to alternate.

    Args:
        path: the JSON file.
        bad: skips and counts malformed dialogues when its ``skip`` is on; raises otherwise.
            JSON has no row lines, so errors name the dialogue's position in the list.

    Returns:
        Dialogues of 3+ turns, in file order.

    Example::

        next(read_pimlico_json("dialogues.json")).n_turns
        # -> 12
    """
    bad = bad or BadRowCounter()
    for i, item in enumerate(_load_json_list(Path(path))):
        try:
            dialogue = _pimlico_dialogue(item)
        except ValueError as exc:
            bad.bad(DataError(path, None, f"dialogue #{i}: {exc}"))
            continue
        if dialogue:
            yield dialogue


def _load_json_list(path: Path) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"invalid UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise DataError(path, 1, "expected a JSON list of dialogues")
    return items


def _pimlico_dialogue(item: Any) -> Dialogue | None:
    if not isinstance(item, dict):
        raise ValueError("expected an object")
    dialogue_id, timestamp, text = (
        _text(item, key) for key in ("dialogue_id", "timestamp", "text")
    )
    try:
        date = parse_date(timestamp)
    except ValueError:
        raise ValueError(f"unparseable timestamp {timestamp!r}") from None
    lines = [line for line in text.split("\n") if line.strip()]
    return two_party_dialogue(dialogue_id, date, [("AB"[i % 2], u) for i, u in enumerate(lines)])


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"missing or empty {key!r}")
    return value
