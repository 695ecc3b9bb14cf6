"""The common form every data source is read into before UDC-layout files are built."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

Turn = tuple[str, ...]  # consecutive utterances of one speaker


@dataclass(frozen=True)
class Dialogue:
    """A two-party dialogue: turns alternate between speakers, oldest first.

    Args:
        id: identifier unique within its source (file name, thread root, ...).
        date: when the dialogue started, used for the time split; ``None`` when unknown.
        turns: each turn holds one speaker's consecutive utterances, as raw text.

    Example:
        >>> Dialogue("d1", None, (("hi",), ("hello", "how are you?"))).n_turns
        2
    """

    id: str
    date: dt.date | None
    turns: tuple[Turn, ...]

    @property
    def n_turns(self) -> int:
        return len(self.turns)


def group_turns(messages: list[tuple[str, str]]) -> tuple[Turn, ...]:
    """Turns from ``(speaker, text)`` messages in order: a new turn when the speaker changes.

    Empty texts are dropped.

    Example:
        >>> group_turns([("a", "hi"), ("a", "there"), ("b", "yo")])
        (('hi', 'there'), ('yo',))
    """
    turns: list[list[str]] = []
    last: str | None = None
    for speaker, text in messages:
        text = " ".join(text.split())
        if not text:
            continue
        if speaker != last or not turns:
            turns.append([])
            last = speaker
        turns[-1].append(text)
    return tuple(tuple(t) for t in turns)
