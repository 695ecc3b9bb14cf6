"""The response repository a bot answers from: turns of the training dialogues, as people wrote
them, beside the normalised form the model saw.

A bot chooses its reply from this file (``responses.jsonl``, one ``{"text", "normalized"}``
object a line, read by :mod:`training.responses`), so what is in it is what users can get.
:class:`RepositoryOptions` curates it by who said what and what the turn holds:

* ``answers_only``: only the second party's turns (odd turns: the one who did not open the
  dialogue, in a support channel the helper), never the opener's questions;
* near-duplicates (the same words up to case, punctuation and spacing) are merged;
* noise is dropped: bot commands (``!theme``), turns without a letter or digit (emoticons),
  and turns of fewer than ``min_words`` words.

Example:
    >>> from chatbot.text import Normalizer
    >>> from training.build import TurnTexts
    >>> d = Dialogue("d", None, (("my wifi is down",), ("try: sudo modprobe ath9k",), (":)",)))
    >>> entries = repository_entries([d], TurnTexts(Normalizer("tokenize")), RepositoryOptions())
    >>> [e["text"] for e in entries]
    ['try: sudo modprobe ath9k']
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from training.build import TurnTexts
from training.dialogue import Dialogue

_NOT_WORD = re.compile(r"[\W_]+")
_HAS_WORD = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class RepositoryOptions:
    """Which turns of the training dialogues a bot may answer with.

    Args:
        answers_only: keep only the second party's (odd) turns; else every turn but the first.
        min_words: drop turns of fewer words (letters or digits) than this.
        drop_commands: drop turns that start with ``!`` (IRC bot commands).
        merge_near_duplicates: keep one of the turns that differ only in case, punctuation
            and spacing.
    """

    answers_only: bool = True
    min_words: int = 1
    drop_commands: bool = True
    merge_near_duplicates: bool = True


def near_duplicate_key(text: str) -> str:
    """The words of ``text``, lower-cased: equal for near-duplicates.

    Example:
        >>> near_duplicate_key("Try  SUDO apt-get update!")
        'try sudo apt get update'
    """
    return _NOT_WORD.sub(" ", text.lower()).strip()


def keep_turn(text: str, options: RepositoryOptions) -> bool:
    """Whether a turn's raw text can be a reply, by ``options``' noise rules.

    Example:
        >>> options = RepositoryOptions(min_words=2)
        >>> [keep_turn(t, options) for t in ("!theme", ":-)", "ok", "ok thanks")]
        [False, False, False, True]
    """
    stripped = text.strip()
    if options.drop_commands and stripped.startswith("!"):
        return False
    if not _HAS_WORD.search(stripped):
        return False
    return len(near_duplicate_key(stripped).split()) >= options.min_words


def repository_entries(
    dialogues: Iterable[Dialogue], texts: TurnTexts, options: RepositoryOptions
) -> Iterator[dict[str, str]]:
    """``{"text", "normalized"}`` for every turn of ``dialogues`` that ``options`` keep, first
    occurrence first; a turn's utterances are shown one a line."""
    seen: set[str] = set()
    step = 2 if options.answers_only else 1
    for dialogue in dialogues:
        for turn in dialogue.turns[1::step]:
            text = "\n".join(u.strip() for u in turn if u.strip())
            if not keep_turn(text, options):
                continue
            key = near_duplicate_key(text) if options.merge_near_duplicates else text
            if key in seen:
                continue
            seen.add(key)
            yield {"text": text, "normalized": texts.response(turn)}


def write_repository(
    path: Path, dialogues: Iterable[Dialogue], texts: TurnTexts, options: RepositoryOptions
) -> int:
    """Writes ``responses.jsonl`` (atomically); returns the number of responses."""
    tmp = path.with_name(path.name + ".part")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for entry in repository_entries(dialogues, texts, options):
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count
