"""The app factory: ``create_app(settings)`` builds a FastAPI app that loads the model at startup.

Run it with ``chatbot serve --model DIR --index DIR``, or with uvicorn and ``CHATBOT_*`` variables:
``uvicorn --factory service.app:create_app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
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
    try:
        if ranker is None:
            ranker = await asyncio.to_thread(_load_ranker, settings)
        # Every input shape is compiled before the service says it is ready.
        await asyncio.to_thread(ranker.warm_up, settings.max_batch_size)
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
        on_stage_times=state.metrics.observe_stages,
    )
    await batcher.start()
    state.ranker, state.batcher, state.not_ready = ranker, batcher, ""
    logger.info("serving model %s", ranker.model_version)


def _load_ranker(settings: Settings) -> Ranker:
    # Imported here: it pulls in TensorFlow (~5 s), which importing the app should not cost.
    if settings.model_threads:
        _limit_threads(settings.model_threads)
    from chatbot.ranker import Ranker

    ranker = Ranker.load(settings.model_dir, settings.index_dir, settings.backend)
    if ranker.index.shows_normalized_text:
        logger.warning(
            "%s was built from normalised UDC CSV rows: replies will be shown stemmed and "
            "lower-cased; rebuild it with `chatbot index --responses` on raw text",
            settings.index_dir,
        )
    return ranker


def _limit_threads(threads: int) -> None:
    """Caps TensorFlow's thread pools, which must happen before its first operation."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TensorFlow already ran something in this process
        logger.warning("cannot cap TensorFlow at %d threads: %s", threads, exc)
