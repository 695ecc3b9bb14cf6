"""What is serving now, and how a new version replaces it without a failed request.

A :class:`LiveBundle` is one loaded model with its index and its own micro-batcher. Requests
borrow the current one (:meth:`Serving.use`) and keep it until they are answered, so a
request finishes on the bundle it started on. A new version is loaded, checked and warmed on
every compiled shape in the background while the old one serves; then one assignment makes
it current, and the old one is closed after its last request.

With a model repository (:mod:`chatbot.bundles`) the service looks for a new version every
``poll_s`` seconds, and at once when anyone asks (``POST /admin/reload`` touches the
repository's reload marker, which every worker of every replica watches each second). A
version that fails to load is refused once, with its reason, and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from chatbot import bundles
from service.batching import MicroBatcher
from service.heap import collection_paused, freeze_loaded_objects
from service.metrics import Metrics
from service.settings import Settings

if TYPE_CHECKING:
    from chatbot.encoder import TextEncoder
    from chatbot.ranker import Ranker

logger = logging.getLogger(__name__)

MARKER_CHECK_S = 1.0  # how often the reload marker is looked at (a stat call)
MAX_SPARES = 2  # spare encoders kept: the running network's and one other's
RELEASE_WAIT_S = 10.0  # how long a load waits for a retired bundle's encoder to come free


class NotReady(Exception):
    """Nothing is serving yet; the message says why."""


@dataclass(eq=False)  # compared and hashed by identity: kept in sets
class LiveBundle:
    """A loaded version and the requests using it."""

    version: str  # the bundle version, or the model's version when not from a repository
    ranker: Ranker
    batcher: MicroBatcher
    bundle: bundles.Bundle | None = None
    active: int = 0
    retired: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    on_closed: Callable[[LiveBundle], None] = lambda live: None

    async def close_when_idle(self) -> None:
        self.retired = True
        if self.active == 0 and not self.closed.is_set():
            self.closed.set()
            await self.batcher.close()
            self.on_closed(self)


@dataclass
class CheckResult:
    serving: str
    swapped: bool
    refused: dict[str, str]


LoadRanker = Callable[[Path, Path, "list[TextEncoder]"], "Ranker"]
CompileSpare = Callable[[Path, int], "TextEncoder"]


class Serving:
    """The current :class:`LiveBundle`, and the swaps that replace it.

    Args:
        settings: the service's settings (model source, batching, polling).
        metrics: where swaps and refusals are counted.
        load_ranker: ``(model_dir, index_dir, spares) -> Ranker``, which may take an encoder
            from ``spares`` (:meth:`chatbot.ranker.Ranker.load`); runs on a worker thread.
        compile_spare: ``(model_dir, max_batch_size) -> TextEncoder``, the model's encoder
            compiled for every shape; without it no spare is made after startup.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        load_ranker: LoadRanker,
        compile_spare: CompileSpare | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._load_ranker = load_ranker
        self._compile_spare = compile_spare
        self.current: LiveBundle | None = None
        self.not_ready = "model is loading"
        self.refused: dict[str, str] = {}
        self.swaps = 0
        self._check_lock = asyncio.Lock()
        self.edit_lock = asyncio.Lock()  # one repository edit at a time (service.admin)
        self._watcher: asyncio.Task[None] | None = None
        self._spare_maker: asyncio.Task[None] | None = None
        self._marker_seen = 0.0
        self.spares: list[TextEncoder] = []
        self._retiring: set[LiveBundle] = set()  # swapped out, still answering requests

    @property
    def repository(self) -> Path | None:
        return self.settings.repository

    # -- using ------------------------------------------------------------------------------

    @asynccontextmanager
    async def use(self) -> AsyncIterator[LiveBundle]:
        """The current bundle, kept alive until the block ends. Raises :class:`NotReady`."""
        live = self.current
        if live is None:
            raise NotReady(self.not_ready)
        live.active += 1
        try:
            yield live
        finally:
            live.active -= 1
            if live.retired and live.active == 0:
                await live.close_when_idle()

    # -- starting and stopping --------------------------------------------------------------

    async def start(self, ranker: Ranker | None = None) -> None:
        """Serves ``ranker`` (tests), or loads what the settings name; a failure leaves the
        service not ready, with the reason, and (with a repository) still watching it."""
        if self.repository is not None:
            # Read before loading: a reload asked for while this loads is still news after.
            self._marker_seen = bundles.reload_requested_at(self.repository)
        with collection_paused():  # nothing is served before the first load
            if ranker is not None or self.repository is None:
                await self._start_from_files(ranker)
            else:
                await self._start_from_repository()
        if self.repository is not None:
            self._watcher = asyncio.create_task(self._watch(), name="repository-watcher")
            wants_spare = self.settings.spare_model and self._compile_spare is not None
            if wants_spare and self.current is not None:
                self._spare_maker = asyncio.create_task(self._make_spare(), name="spare-model")

    async def close(self) -> None:
        for task in (self._watcher, self._spare_maker):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.current is not None:
            self.current.retired = True
            self.current.closed.set()
            await self.current.batcher.close()

    async def _start_from_files(self, ranker: Ranker | None) -> None:
        model_dir, index_dir = self.settings.model_dir, self.settings.index_dir
        try:
            if ranker is None:
                assert model_dir is not None and index_dir is not None
                ranker = await self._load(model_dir, index_dir)
            else:
                await asyncio.to_thread(ranker.warm_up, self.settings.max_batch_size)
        except Exception as exc:
            # Keep serving: /healthz stays up and /readyz tells the orchestrator why.
            logger.exception("could not load the model from %s", model_dir)
            self.not_ready = f"loading the model failed: {type(exc).__name__}: {exc}"
            return
        await self._install(ranker.model_version, ranker, None)

    async def _start_from_repository(self) -> None:
        """The pinned version, or the newest one that loads."""
        assert self.repository is not None
        if self.settings.version is not None:
            candidates = [self.settings.version]
        else:
            candidates = list(reversed(bundles.versions(self.repository)))
        if not candidates:
            self.not_ready = f"{self.repository} has no published version yet (chatbot publish)"
            logger.warning("%s", self.not_ready)
            return
        for version in candidates:
            if await self._try_version(version):
                return
        self.not_ready = "no version of the repository loads: " + "; ".join(
            f"{v}: {why}" for v, why in self.refused.items()
        )

    # -- checking the repository ------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Looks at the repository now: loads and swaps in the version that should serve,
        if it is new and has not been refused before."""
        async with self._check_lock:
            swapped = False
            wanted = self._wanted_version()
            serving = self.current.version if self.current is not None else None
            if wanted is not None and wanted != serving and wanted not in self.refused:
                swapped = await self._try_version(wanted)
            current = self.current.version if self.current is not None else ""
            return CheckResult(current, swapped, dict(self.refused))

    def _wanted_version(self) -> str | None:
        if self.repository is None:
            return None
        if self.settings.version is not None:
            return self.settings.version
        newest = bundles.newest(self.repository)
        return newest.version if newest is not None else None

    async def _try_version(self, version: str) -> bool:
        assert self.repository is not None
        start = time.perf_counter()
        try:
            bundle = bundles.find(self.repository, version)
            ranker = await self._load(bundle.model_dir, bundle.index_dir)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.refused[version] = reason
            self.metrics.bundles_refused.inc()
            serving = self.current.version if self.current is not None else "nothing"
            logger.error("refused version %s (%s); still serving %s", version, reason, serving)
            return False
        await self._install(version, ranker, bundle)
        logger.info("now serving %s (loaded and warmed in %.1f s)", version, _since(start))
        return True

    async def _load(self, model_dir: Path, index_dir: Path) -> Ranker:
        # A bundle swapped out moments ago frees its encoder (a spare) after its last request;
        # waiting for that (requests are bounded by their deadline) beats compiling anew.
        pending = [live.closed.wait() for live in self._retiring if not live.closed.is_set()]
        if pending:
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), RELEASE_WAIT_S)
        ranker = await asyncio.to_thread(self._load_ranker, model_dir, index_dir, self.spares)
        # Every input shape is compiled (or reused) before the version serves a request.
        await asyncio.to_thread(ranker.warm_up, self.settings.max_batch_size)
        return ranker

    def _released(self, live: LiveBundle) -> None:
        """A swapped-out bundle answered its last request: its encoder is kept for the next
        version of its network (a TensorFlow one: LiteRT's compile nothing, and need no
        spare), and the heap is frozen again once the rest of it is garbage."""
        self._retiring.discard(live)
        encoder = live.ranker.scorer.encoder
        if hasattr(encoder, "recycled_for"):
            self.spares = [*self.spares, cast("TextEncoder", encoder)][-MAX_SPARES:]
        # Soon, not now: the request that released it still refers to it until it returns.
        asyncio.get_running_loop().call_soon(_freeze_heap)

    async def _make_spare(self) -> None:
        """Compiles the serving network's encoder once more, as a spare for its next version
        (in the background: the service is ready already)."""
        live = self.current
        if live is None or live.bundle is None or self._compile_spare is None:
            return
        if not hasattr(live.ranker.scorer.encoder, "recycled_for"):
            return  # on LiteRT: nothing to compile, and no TensorFlow to import for it
        start = time.perf_counter()
        try:
            spare = await asyncio.to_thread(
                self._compile_spare, live.bundle.model_dir, self.settings.max_batch_size
            )
        except Exception:
            logger.exception("could not make a spare model; new versions will compile")
            return
        self.spares = [*self.spares, spare][-MAX_SPARES:]
        logger.info("spare model ready in %.1f s: new versions of it skip compiling", _since(start))
        _freeze_heap()

    async def _install(self, version: str, ranker: Ranker, bundle: bundles.Bundle | None) -> None:
        settings = self.settings
        batcher = MicroBatcher(
            ranker,
            batching=settings.batching,
            window_s=settings.batch_window_ms / 1000,
            max_batch_size=settings.max_batch_size,
            on_batch=self.metrics.batch_size.observe,
            on_model_time=self.metrics.model_seconds.observe,
            on_stage_times=self.metrics.observe_stages,
        )
        await batcher.start()
        live = LiveBundle(version, ranker, batcher, bundle, on_closed=self._released)
        old, self.current = self.current, live
        self.not_ready = ""
        if old is None:
            _freeze_heap()
            return
        self.swaps += 1
        self.metrics.bundle_swaps.inc()
        self._retiring.add(old)
        # Frozen once the old bundle is released (_released), at once if it is idle: frozen
        # while it still answered requests, whatever of it lies in reference cycles would
        # stay in the permanent generation, never collected, until the next load.
        await old.close_when_idle()

    async def _watch(self) -> None:
        """Checks the repository every ``poll_s`` seconds, and whenever the reload marker
        is touched."""
        assert self.repository is not None
        poll_s = self.settings.poll_s
        last_poll = time.monotonic()
        while True:
            await asyncio.sleep(min(MARKER_CHECK_S, poll_s) if poll_s else MARKER_CHECK_S)
            marker = bundles.reload_requested_at(self.repository)
            due = poll_s > 0 and time.monotonic() - last_poll >= poll_s
            if marker > self._marker_seen or due:
                self._marker_seen = max(self._marker_seen, marker)
                last_poll = time.monotonic()
                try:
                    await self.check()
                except Exception:  # the watcher must outlive any one bad check
                    logger.exception("checking %s failed", self.repository)


def _freeze_heap() -> None:
    """Keeps what was just loaded out of the collector's full passes (service.heap): on the
    event loop, as the collection holds the GIL wherever it runs."""
    seconds = freeze_loaded_objects()
    logger.info(
        "%d objects frozen out of garbage collection in %.2f s", gc.get_freeze_count(), seconds
    )


def _since(start: float) -> float:
    return time.perf_counter() - start
