"""A deterministic stand-in for ``chatbot.ranker.Ranker``: word overlap over a tiny repository."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from chatbot.calibration import UNCALIBRATED
from chatbot.timing import StageTimes

if TYPE_CHECKING:
    from chatbot.ranker import Ranker

REPOSITORY = (
    "hello there, how can I help?",
    "try restarting the network manager",
    "sudo apt-get install the package you need",
    "look in /var/log/syslog for errors",
    "you are welcome",
)


@dataclass(frozen=True)
class FakeQuery:
    """Same role as ``chatbot.ranker.Query``: the turns, and the context as text."""

    turns: list[str]
    context: str


class FakeNormalizer:
    """Leaves text as it is (``chatbot.text.Normalizer("none")`` with the UDC layout)."""

    mode = "none"

    def context(self, turns: Sequence[str]) -> str:
        return " ".join(f"{turn} __eou__ __eot__" for turn in turns)


@dataclass(frozen=True)
class FakeHit:
    """Same shape as ``chatbot.ranker.Hit``."""

    text: str
    score: float


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


class FakeRanker:
    """Scores a response by how many of its words appear in the last turn of the context.

    Ties keep repository order. It records every batch, sleeps ``delay`` seconds per call (so
    concurrent requests pile up) and complains if it is ever called from two threads at once.
    """

    model_version = "fake-20260101-00000000"
    artifact = None  # not loaded from an artifact: index edits are refused
    scorer = SimpleNamespace(encoder=None)  # no encoder to keep as a spare
    normalizer = FakeNormalizer()
    calibration = UNCALIBRATED

    def __init__(self, repository: Sequence[str] = REPOSITORY, delay: float = 0.0) -> None:
        self.repository = list(repository)
        self.index = self.repository  # what /admin/status counts
        self.delay = delay
        self.batches: list[list[list[str]]] = []
        self.warm_ups: list[int] = []
        self._busy = threading.Lock()

    def prepare(self, context: Sequence[str]) -> FakeQuery:
        """The fake's prepared context is the context itself."""
        return FakeQuery(list(context), self.normalizer.context(context))

    def respond(self, contexts: Sequence[Sequence[str]], k: int) -> list[list[FakeHit]]:
        return self.respond_prepared([self.prepare(c) for c in contexts], k)

    def respond_prepared(
        self, queries: Sequence[FakeQuery], k: int, times: StageTimes | None = None
    ) -> list[list[FakeHit]]:
        if times is not None:  # the stages a real ranker reports
            with times.stage("encode"):
                pass
        if not self._busy.acquire(blocking=False):
            raise AssertionError("ranker called concurrently")
        contexts = [_turns(query) for query in queries]
        try:
            self.batches.append([list(c) for c in contexts])
            time.sleep(self.delay)
            return [self.rank_candidates(c, self.repository, k) for c in contexts]
        finally:
            self._busy.release()

    def warm_up(self, max_batch_size: int, k: int = 10) -> float:
        self.warm_ups.append(max_batch_size)
        return 0.0

    def rank_prepared_candidates(
        self, query: FakeQuery, candidates: Sequence[str], k: int
    ) -> list[FakeHit]:
        return self.rank_candidates(_turns(query), candidates, k)

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[FakeHit]:
        last = words(context[-1])
        hits = [FakeHit(text, float(len(last & words(text)))) for text in candidates]
        return sorted(hits, key=lambda hit: -hit.score)[:k]


class BrokenRanker(FakeRanker):
    """Fails on any context that mentions ``boom``; answers the others."""

    def respond_prepared(
        self, queries: Sequence[FakeQuery], k: int, times: StageTimes | None = None
    ) -> list[list[FakeHit]]:
        if any("boom" in turn for query in queries for turn in _turns(query)):
            self.batches.append([_turns(query) for query in queries])
            raise RuntimeError("model exploded")
        return super().respond_prepared(queries, k)

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[FakeHit]:
        if any("boom" in turn for turn in context):
            raise RuntimeError("model exploded")
        return super().rank_candidates(context, candidates, k)


def _turns(query: FakeQuery | Sequence[str]) -> list[str]:
    # The batcher's own tests hand it plain lists of turns.
    return list(query.turns) if isinstance(query, FakeQuery) else list(query)


def as_ranker(fake: FakeRanker) -> Ranker:
    """The fake, typed as what the service expects (it has the same methods, not the class)."""
    return cast("Ranker", fake)
