"""Word vocabulary: token <-> id, with padding 0 and unknown 1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from chatbot.text import EOT

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """An ordered word list; a word's id is its position.

    Example:
        >>> v = Vocab.build([["a", "b", "a"]], max_size=10, min_count=1)
        >>> v.encode(["a", "z"]).tolist()
        [2, 1]
    """

    def __init__(self, words: Sequence[str]) -> None:
        if list(words[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r} and {UNK!r}")
        self.words = list(words)
        self._ids = {w: i for i, w in enumerate(self.words)}
        if len(self._ids) != len(self.words):
            raise ValueError("vocabulary has duplicate words")

    @property
    def turn_marker_id(self) -> int:
        """The id of ``__eot__``, which ends a context's turn; 0 when it is not a word here.

        Example:
            >>> Vocab([PAD, UNK, "hi", EOT]).turn_marker_id
            3
        """
        return self._ids.get(EOT, 0)

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int, min_count: int) -> Vocab:
        """Most frequent words first (ties alphabetical), at most ``max_size`` in all."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([PAD, UNK, *kept[: max(0, max_size - 2)]])

    def encode(
        self, tokens: Sequence[str], max_len: int | None = None, keep: str = "first"
    ) -> np.ndarray:
        """Token ids (int32), unknown words as 1.

        Args:
            tokens: words to encode.
            max_len: longest output; longer inputs are cut.
            keep: ``first`` keeps the first ``max_len`` tokens, ``last`` the last ones (contexts,
                so that the latest turns survive).
        """
        if max_len is not None and len(tokens) > max_len:
            tokens = tokens[-max_len:] if keep == "last" else tokens[:max_len]
        return np.fromiter((self._ids.get(t, 1) for t in tokens), dtype=np.int32, count=len(tokens))

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.words) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls(path.read_text(encoding="utf-8").splitlines())
