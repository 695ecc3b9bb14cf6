"""Training pairs from dialogues: every (context, next turn) pair, and hard negatives for them.

Where dialogues are few, every turn from the third on is a training response for the turns
before it (the UDC generator instead samples one context length per dialogue). Hard negatives
(:func:`hard_negative_rows`) are label-0 rows that softmax training adds to its in-batch
negatives (:func:`training.dataset.hard_negative_table`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from training.build import TurnTexts
from training.dialogue import Dialogue

Position = tuple[int, int]  # (dialogue index, turn index of the response)


def pair_positions(dialogues: Sequence[Dialogue]) -> list[Position]:
    """Every ``(dialogue, k)`` with ``k >= 2``: turn k answers the turns before it.

    Example:
        >>> pair_positions([Dialogue("d", None, (("a",), ("b",), ("c",), ("d",)))])
        [(0, 2), (0, 3)]
    """
    return [(i, k) for i, d in enumerate(dialogues) for k in range(2, d.n_turns)]


def dialogue_pairs(
    dialogues: Sequence[Dialogue],
    texts: TurnTexts,
    max_turns: int,
    positions: Sequence[Position] | None = None,
) -> Iterator[tuple[str, str, int]]:
    """The (context, next turn, 1) pair at each position (default: every pair): turn k
    answers the up to ``max_turns`` turns before it.

    Example:
        >>> from chatbot.text import Normalizer
        >>> d = Dialogue("d", None, (("a",), ("b",), ("c",), ("d",)))
        >>> [r for _, r, _ in dialogue_pairs([d], TurnTexts(Normalizer("none")), 20)]
        ['c __eou__', 'd __eou__']
    """
    for i, k in pair_positions(dialogues) if positions is None else positions:
        turns = dialogues[i].turns
        yield texts.context(turns[max(0, k - max_turns) : k]), texts.response(turns[k]), 1


def hard_negative_rows(
    dialogues: Sequence[Dialogue],
    texts: TurnTexts,
    max_turns: int,
    positions: Sequence[Position] | None = None,
    chunk: int = 2048,
) -> list[tuple[str, str, int]]:
    """Two label-0 rows for the pair at each position (default: every pair), texts lexically
    close to the context that do not answer it:

    * a **restatement**: the context's own last turn (the message being answered);
    * **another user's question**: the opening turn of another training dialogue that is
      closest (TF-IDF cosine) to that last turn.

    A bot trained only against random in-batch responses never sees these, and at repository
    scale they are the replies that beat the answer.

    Example:
        >>> from chatbot.text import Normalizer
        >>> a = Dialogue("a", None, (("wifi broken",), ("try ath9k",), ("thanks",)))
        >>> b = Dialogue("b", None, (("my wifi is broken again",), ("reboot",), ("ok",)))
        >>> rows = hard_negative_rows([a, b], TurnTexts(Normalizer("none")), 20)
        >>> [(r, label) for _, r, label in rows[:2]]
        [('try ath9k __eou__', 0), ('my wifi is broken again __eou__', 0)]
    """
    from chatbot.lexical import TfidfModel

    openers = [texts.response(d.turns[0]) for d in dialogues]
    lexical = TfidfModel.fit(openers)
    opener_rows = lexical.transform(openers)  # (dialogues, V)
    queries, meta = [], []
    for i, k in pair_positions(dialogues) if positions is None else positions:
        turns = dialogues[i].turns
        context = texts.context(turns[max(0, k - max_turns) : k])
        last = texts.response(turns[k - 1])
        queries.append(last)
        meta.append((i, context, last, texts.response(turns[k])))
    rows: list[tuple[str, str, int]] = []
    for start in range(0, len(queries), chunk):
        part = meta[start : start + chunk]
        cosine = (lexical.transform(queries[start : start + chunk]) @ opener_rows.T).toarray()
        for j, (i, _, _, _) in enumerate(part):
            cosine[j, i] = -1.0  # never the dialogue's own opening
        best = cosine.argmax(axis=1)
        for j, (_, context, last, truth) in enumerate(part):
            rows.append((context, last, 0))
            if openers[best[j]] != truth:
                rows.append((context, openers[best[j]], 0))
    return rows
