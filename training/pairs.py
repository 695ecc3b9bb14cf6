"""Training pairs from dialogues: every (context, next turn) pair, and hard negatives for them.

Where dialogues are few, every turn from the third on is a training response for the turns
before it (the UDC generator instead samples one context length per dialogue). Hard negatives
(:func:`hard_negative_rows`) are label-0 rows that softmax training adds to its in-batch
negatives (:func:`training.dataset.hard_negative_table`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from training.build import TurnTexts
from training.dialogue import Dialogue


def dialogue_pairs(
    dialogues: Iterable[Dialogue], texts: TurnTexts, max_turns: int
) -> Iterator[tuple[str, str, int]]:
    """Every (context, next turn, 1) pair of the dialogues: turn k (k >= 2) answers the up to
    ``max_turns`` turns before it.

    Example:
        >>> d = Dialogue("d", None, (("a",), ("b",), ("c",), ("d",)))
        >>> [r for _, r, _ in dialogue_pairs([d], TurnTexts(Normalizer("none")), 20)]
        ['c __eou__', 'd __eou__']
    """
    for d in dialogues:
        for k in range(2, d.n_turns):
            context = texts.context(d.turns[max(0, k - max_turns) : k])
            yield context, texts.response(d.turns[k]), 1


def hard_negative_rows(
    dialogues: Sequence[Dialogue], texts: TurnTexts, max_turns: int, chunk: int = 2048
) -> list[tuple[str, str, int]]:
    """Two label-0 rows for every pair of :func:`dialogue_pairs`, texts lexically close to
    the context that do not answer it:

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
    for i, d in enumerate(dialogues):
        for k in range(2, d.n_turns):
            context = texts.context(d.turns[max(0, k - max_turns) : k])
            last = texts.response(d.turns[k - 1])
            queries.append(last)
            meta.append((i, context, last, texts.response(d.turns[k])))
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
