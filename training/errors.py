"""Errors that name the input at fault, so a bad row is fixed rather than hunted for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatbot.errors import ChatbotError


class DataError(ChatbotError, ValueError):
    """Input data that cannot be used: says which file, which line and what is wrong.

    Example:
        >>> str(DataError("train.csv", 3, "label 'x' is not 0 or 1"))
        "train.csv:3: label 'x' is not 0 or 1"
    """

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


@dataclass
class BadRowCounter:
    """Counts rows skipped under ``--skip-bad-rows``; raises instead when skipping is off.

    Example:
        >>> c = BadRowCounter(skip=True)
        >>> c.bad(DataError("f.csv", 2, "empty text"))
        >>> c.count
        1
    """

    skip: bool = False
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def bad(self, error: DataError) -> None:
        if not self.skip:
            raise error
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(str(error))
