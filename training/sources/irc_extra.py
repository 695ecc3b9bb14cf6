"""More raw #ubuntu logs, in the layouts they were published in, as two-party dialogues.

A folder of logs, one layout per file, told apart by the file name:

* ``*.irclogs.txt``, ``*.raw.txt``: ``[HH:MM] <nick> text`` lines (``===`` system lines and
  ``/me`` actions are skipped), the day in the file name (``ubuntu_2005-02-24.irclogs.txt``,
  ``2016-06-06_02.raw.txt``);
* ``*.time_nick_text.tsv``: ``ISO-time<TAB>nick<TAB>text``;
* ``*.time_from_to_text.tsv``: ``ISO-time<TAB>from<TAB>to<TAB>text``, the raw UDC layout
  (``to`` empty when the message names nobody).

Dialogues are recovered with UDC's ``nick:`` addressing heuristic
(:func:`training.sources.irc.addressed_dialogues`); a given ``to`` column is used as it is.
A dialogue is dated by its first message.

Example::

    dialogues = list(read_irc_extra("ubuntu_irc/extra"))
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from training.dialogue import Dialogue, group_turns
from training.errors import BadRowCounter, DataError
from training.sources._common import MIN_TURNS, bad_utf8
from training.sources.irc import Message, _address, addressed_dialogues, parse_log

_DATE = re.compile(r"(\d{4}-\d\d-\d\d)")
_TEXT_LOGS = (".irclogs.txt", ".raw.txt")
_NICK_TSV = ".time_nick_text.tsv"
_FROM_TO_TSV = ".time_from_to_text.tsv"
LAYOUTS = (*_TEXT_LOGS, _NICK_TSV, _FROM_TO_TSV)


def read_irc_extra(folder: str | Path, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
    """Two-party dialogues of every log in ``folder`` (file name order).

    Raises:
        DataError: a file of an unknown layout, a name without a date, or a malformed line
            (unless ``bad`` skips them).
    """
    bad = bad or BadRowCounter()
    root = Path(folder)
    if not root.is_dir():
        raise DataError(root, None, "not a folder of IRC logs")
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        yield from _log_dialogues(path, bad)


def _log_dialogues(path: Path, bad: BadRowCounter) -> list[Dialogue]:
    name = path.name
    if name.endswith(_TEXT_LOGS):
        day = _file_date(path)
        start = dt.datetime.combine(day, dt.time())
        messages = [
            (start + dt.timedelta(minutes=m.minute), m)
            for m in parse_log(str(path), path.read_bytes(), bad).values()
        ]
    elif name.endswith((_NICK_TSV, _FROM_TO_TSV)):
        messages = list(_tsv_messages(path, bad, with_to=name.endswith(_FROM_TO_TSV)))
    else:
        raise DataError(path, None, f"unknown log layout; expected a name ending in {LAYOUTS}")
    when = {m.index: time for time, m in messages}
    dialogues = []
    for n, group in enumerate(addressed_dialogues([m for _, m in messages])):
        turns = group_turns([(m.nick, m.text) for m in group])
        if len(turns) >= MIN_TURNS:
            stem = name.split(".", 1)[0]
            dialogues.append(Dialogue(f"{stem}:addr:{n}", when[group[0].index].date(), turns))
    return dialogues


def _file_date(path: Path) -> dt.date:
    match = _DATE.search(path.name)
    if match is None:
        raise DataError(path, None, "log name holds no YYYY-MM-DD date")
    return dt.date.fromisoformat(match.group(1))


def _tsv_messages(
    path: Path, bad: BadRowCounter, with_to: bool
) -> Iterator[tuple[dt.datetime, Message]]:
    """``(time, message)`` of each line of a tab-separated log, minutes counted from its first."""
    columns = 4 if with_to else 3
    seen: dict[str, int] = {}  # lower-cased nick -> minute last spoken
    first: dt.datetime | None = None
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    for index, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        fields = raw.split("\t", columns - 1)  # the text may hold tabs itself
        if len(fields) != columns or bad_utf8(fields):
            reason = "invalid UTF-8" if len(fields) == columns else f"expected {columns} fields"
            bad.bad(DataError(path, index + 1, reason))
            continue
        try:
            time = dt.datetime.fromisoformat(fields[0].replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            bad.bad(DataError(path, index + 1, f"not an ISO time: {fields[0]!r}"))
            continue
        first = first or time
        minute = int((time - first).total_seconds() // 60)
        nick, body = fields[1].strip(), fields[-1].strip()
        if not nick or not body:
            continue
        if with_to:
            to = fields[2].strip().lower() or None
            addressee = to if to != nick.lower() else None
        else:
            addressee, body = _address(body, nick, seen, minute)
        seen[nick.lower()] = minute
        yield time, Message(index, minute, nick, body, addressee)
