"""Texts stored one JSON string a line, read on demand from a memory-mapped file.

A million responses as Python strings cost each worker process 100+ MB; serving shows only
the few it returns. :class:`JsonlTexts` keeps one int64 offset per line and decodes a line
when asked, while the file's pages are shared by every process that maps it.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "texts.jsonl"
    >>> write_jsonl(path, ["hi", 'say "yes"\\nok'])
    >>> texts = JsonlTexts(path)
    >>> len(texts), texts[1], texts[-2:] == ["hi", 'say "yes"\\nok']
    (2, 'say "yes"\\nok', True)
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

_BLOCK = 1 << 24  # bytes read at once while finding the lines


def write_jsonl(path: Path, texts: Iterable[str]) -> None:
    """One JSON string a line (newlines inside a text are escaped, so lines are texts)."""
    with path.open("w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps(text, ensure_ascii=False) + "\n")


class JsonlTexts(Sequence[str]):
    """A read-only sequence over the lines of a file written by :func:`write_jsonl`.

    Raises:
        ValueError: a line that is not a JSON string (named by its line number) when read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets: tuple[np.ndarray, np.ndarray] | None = None
        self._data: mmap.mmap | bytes = b""

    def _lines(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each line starts and ends, found on first use by reading the file (not
        through the mapping, so that only the lines shown are ever mapped in)."""
        if self._offsets is None:
            ends_found, size = [], 0
            with self.path.open("rb") as f:
                for block in iter(lambda: f.read(_BLOCK), b""):
                    newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                    ends_found.append(newlines + size)
                    size += len(block)
                if size:
                    self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            ends = np.concatenate(ends_found) if ends_found else np.zeros(0, np.int64)
            if size and (not len(ends) or ends[-1] != size - 1):  # a last line without "\n"
                ends = np.append(ends, size)
            starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
            self._offsets = (starts, ends.astype(np.int64))
        return self._offsets

    def __len__(self) -> int:
        return len(self._lines()[1])

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        starts, ends = self._lines()
        line = range(len(ends))[i]  # negative indexes, and IndexError past the end
        raw = self._data[starts[line] : ends[line]]
        try:
            text = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}:{line + 1}: not a JSON string ({exc})") from exc
        if not isinstance(text, str):
            raise ValueError(f"{self.path}:{line + 1}: not a JSON string")
        return text

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]
