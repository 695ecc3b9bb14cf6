"""Time spent per named stage of a call, for metrics and benchmarks (no heavy imports)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds spent per named stage, added up over calls.

    Example:
        >>> times = StageTimes()
        >>> with times.stage("encode"):
        ...     pass
        >>> list(times.seconds)
        ['encode']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Adds time measured elsewhere (on another thread) to stage ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
