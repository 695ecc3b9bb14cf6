"""Reader for the Chit-Chat Challenge conversations of the ``chitchat_dataset`` package.

This corpus ships with the package, so it is the default source: the pipeline runs end to end
without any download. Each conversation is ``{"messages": [[message, ...], ...]}``, an inner
list being one speaker's turn and a message ``{"text", "timestamp", "sender"}``.

Example::

    next(read_chitchat()).n_turns
    # -> 12
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from training.dialogue import Dialogue
from training.errors import BadRowCounter, DataError
from training.sources._common import parse_date, two_party_dialogue


def read_chitchat(
    path: str | Path | None = None, bad: BadRowCounter | None = None
) -> Iterator[Dialogue]:
    """Two-party conversations of 3+ turns, in the dataset's order.

    Args:
        path: a JSON file in the package's layout; ``None`` reads the one the package embeds.
        bad: skips and counts malformed conversations when its ``skip`` is on; raises otherwise.

    Returns:
        Dialogues whose id is the conversation key and date that of its first message.

    Example::

        sum(1 for _ in read_chitchat())
        # -> 7168
    """
    import chitchat_dataset  # lazy: loads the whole corpus (about 20 MB of JSON)

    dataset = chitchat_dataset.Dataset(str(path)) if path else chitchat_dataset.Dataset()
    bad = bad or BadRowCounter()
    for key, conversation in dataset.items():
        try:
            dialogue = _dialogue(key, conversation)
        except (ValueError, KeyError, TypeError) as exc:
            bad.bad(DataError(dataset.path, None, f"conversation {key}: malformed ({exc!r})"))
            continue
        if dialogue:
            yield dialogue


def _dialogue(key: str, conversation: Mapping[str, Any]) -> Dialogue | None:
    messages = [message for turn in conversation["messages"] for message in turn]
    if not messages:
        return None
    date = parse_date(messages[0]["timestamp"])
    return two_party_dialogue(key, date, [(m["sender"], m["text"]) for m in messages])
