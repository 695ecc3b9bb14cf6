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
_NEWLINE = ord("\n")


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
        self._ends: np.ndarray | None = None
        self._data: mmap.mmap | bytes = b""

    def _blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(offset, block)`` over the file, read (not mapped: only the lines shown are ever
        mapped in), :data:`_BLOCK` bytes at a time."""
        offset = 0
        with self.path.open("rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                yield offset, np.frombuffer(block, dtype=np.uint8)
                offset += len(block)

    def _line_ends(self) -> np.ndarray:
        """Where each line ends (its newline, or the end of the file), found on first use.
        Only the ends are kept (8 bytes a line): line ``i`` starts after line ``i - 1``."""
        if self._ends is None:
            found, size, last = [], 0, _NEWLINE
            for offset, block in self._blocks():
                found.append(np.flatnonzero(block == _NEWLINE) + offset)
                size, last = offset + len(block), int(block[-1])
            ends = np.concatenate(found).astype(np.int64) if found else np.zeros(0, np.int64)
            if last != _NEWLINE:  # a last line without "\n" ends with the file
                ends = np.append(ends, size)
            if size:
                with self.path.open("rb") as f:
                    self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._ends = ends
        return self._ends

    def line_count(self) -> int:
        """How many lines the file has, without keeping where they are (for a file that
        may never be read, such as an index's normalised texts while it serves)."""
        if self._ends is not None:
            return len(self._ends)
        count, last = 0, _NEWLINE
        for _, block in self._blocks():
            count += int(np.count_nonzero(block == _NEWLINE))
            last = int(block[-1])
        return count + (last != _NEWLINE)  # a last line without "\n"

    def __len__(self) -> int:
        return len(self._line_ends())

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        ends = self._line_ends()
        line = range(len(ends))[i]  # negative indexes, and IndexError past the end
        start = int(ends[line - 1]) + 1 if line else 0
        raw = self._data[start : ends[line]]
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
