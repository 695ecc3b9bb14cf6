"""The app factory: ``create_app(settings)`` builds a FastAPI app that loads the model at startup.

Run it with ``chatbot serve --model DIR --index DIR``, or with uvicorn and ``CHATBOT_*`` variables:
``uvicorn --factory service.app:create_app``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service.batching import MicroBatcher
from service.deps import ServiceState
from service.errors import install_error_handlers
from service.metrics import Metrics, MetricsMiddleware
from service.routes import STATIC_DIR, router
from service.settings import Settings

if TYPE_CHECKING:
    from chatbot.ranker import Ranker

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, ranker: Ranker | None = None) -> FastAPI:
    """Builds the service.

    Args:
        settings: defaults to ``Settings()``, read from ``CHATBOT_*`` environment variables.
        ranker: an already loaded ranker to serve instead of loading ``settings.model_dir``
            (tests pass a fake one).

    Example:
        >>> app = create_app(Settings(model_dir="runs/model", index_dir="runs/index"))
    """
    # Without arguments every field comes from CHATBOT_* variables, which mypy cannot see.
    settings = settings if settings is not None else Settings()  # type: ignore[call-arg]
    state = ServiceState(settings=settings, metrics=Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(state, ranker)
        try:
            yield
        finally:
            if state.batcher is not None:
                await state.batcher.close()

    app = FastAPI(
        title="Retrieval chatbot",
        summary="Ranks repository responses for a conversation with a dual-encoder LSTM.",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    # Outermost, as before: times everything below it, CORS included.
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _start(state: ServiceState, ranker: Ranker | None) -> None:
    """Loads the model (unless given one) and starts the batcher; a failure leaves it not ready."""
    settings = state.settings
    if ranker is None:
        try:
            ranker = await asyncio.to_thread(_load_ranker, settings)
        except Exception as exc:
            # Keep serving: /healthz stays up and /readyz tells the orchestrator why.
            logger.exception("could not load the model from %s", settings.model_dir)
            state.not_ready = f"loading the model failed: {type(exc).__name__}: {exc}"
            return
    batcher = MicroBatcher(
        ranker,
        batching=settings.batching,
        window_s=settings.batch_window_ms / 1000,
        max_batch_size=settings.max_batch_size,
        on_batch=state.metrics.batch_size.observe,
        on_model_time=state.metrics.model_seconds.observe,
    )
    await batcher.start()
    state.ranker, state.batcher, state.not_ready = ranker, batcher, ""
    logger.info("serving model %s", ranker.model_version)


def _load_ranker(settings: Settings) -> Ranker:
    # Imported here: it pulls in TensorFlow (~5 s), which importing the app should not cost.
    from chatbot.ranker import Ranker

    ranker = Ranker.load(settings.model_dir, settings.index_dir, settings.backend)
    warm_up(ranker, settings.max_batch_size)
    return ranker


# The encoder pads context lengths to these buckets and the ranker's ``max_context_tokens``
# (chatbot.encoder.LENGTH_BUCKETS; read from there when it exists, so that a change is followed).
_DEFAULT_LENGTH_BUCKETS = (16, 32, 64, 128)
_WARM_UP_WORD = "hello"  # one token under every normalisation


def warm_up_plan(
    max_batch_size: int, max_tokens: int, buckets: Sequence[int] = _DEFAULT_LENGTH_BUCKETS
) -> list[tuple[int, int]]:
    """(contexts per call, words per context) for every shape a model call can meet.

    XLA compiles each new input shape once (about 0.5 s on 2 cores), so the first request of
    each shape would stall. The encoder pads a batch to the next power of two and its longest
    context to a length bucket; the exact search pads queries to powers of two up to 8, then
    multiples of 8. Every power-of-two batch size up to ``max_batch_size`` meets every length
    bucket once, and the batch sizes are picked so that the search's query shapes are all met
    along the way. Contexts are one turn of repeated words, aimed at the middle of each
    bucket (so that the few markers a normaliser adds do not move them), plus one longer than
    ``max_tokens`` for the cap.
    """
    bounds = [0, *(b for b in buckets if b < max_tokens)]
    words = [(lo + hi) // 2 for lo, hi in itertools.pairwise(bounds)]
    words.append(max_tokens + 16)  # truncated to the cap
    sizes = []
    power = 1
    while True:
        top = min(power, max_batch_size)
        # Sizes that pad to ``top`` in the encoder; in the search, (power/2, power] holds
        # several multiples of 8 above 8: cover them, largest last.
        lo = power // 2 + 1
        search = sorted({-(-n // 8) * 8 for n in range(lo, top + 1)} if top > 8 else {top})
        sizes.append(search)
        if power >= max_batch_size:
            break
        power *= 2
    plan = []
    for group in sizes:
        for j, length in enumerate(words):
            plan.append((group[min(j, len(group) - 1)], length))
        for n in group[len(words) :]:  # more search shapes than length buckets
            plan.append((n, words[0]))
    return plan


def warm_up(ranker: Ranker, max_batch_size: int, k: int = 10) -> float:
    """Compiles every input shape with ``ranker.respond`` calls; returns the seconds it took."""
    start = time.perf_counter()
    try:
        from chatbot.encoder import LENGTH_BUCKETS as buckets
    except ImportError:  # pragma: no cover - the encoder moved it
        buckets = _DEFAULT_LENGTH_BUCKETS
    max_tokens = int(getattr(ranker, "max_context_tokens", 160))
    plan = warm_up_plan(max_batch_size, max_tokens, buckets)
    for n, words in plan:
        context: Sequence[str] = [" ".join([_WARM_UP_WORD] * words)]
        ranker.respond([context] * n, k)
    took = time.perf_counter() - start
    logger.info(
        "warm-up: %d model calls (batches of up to %d) in %.1f s", len(plan), max_batch_size, took
    )
    return took
