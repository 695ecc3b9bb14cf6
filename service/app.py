"""The app factory: ``create_app(settings)`` builds a FastAPI app that loads the model at startup.

Run it with ``chatbot serve --repository REPO`` (or ``--model DIR --index DIR``), or with
uvicorn and ``CHATBOT_*`` variables: ``uvicorn --factory service.app:create_app``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.admin import router as admin_router
from service.deps import ServiceState
from service.errors import install_error_handlers
from service.feedback_log import FeedbackLog
from service.feedback_routes import router as feedback_router
from service.limits import ADMIN_PREFIX, BodyLimitMiddleware, PublicCORSMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.routes import STATIC_DIR, router
from service.serving import Serving
from service.settings import Settings
from service.worker_load import LOAD_DIR_ENV, ShareLoadMiddleware

if TYPE_CHECKING:
    from chatbot.encoder import TextEncoder
    from chatbot.ranker import Ranker

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, ranker: Ranker | None = None) -> FastAPI:
    """Builds the service.

    Args:
        settings: defaults to ``Settings()``, read from ``CHATBOT_*`` environment variables.
        ranker: an already loaded ranker to serve instead of loading the settings' model
            (tests pass a fake one).

    Example:
        >>> app = create_app(Settings(model_dir="runs/model", index_dir="runs/index"))
    """
    # Without arguments every field comes from CHATBOT_* variables, which mypy cannot see.
    settings = settings if settings is not None else Settings()  # type: ignore[call-arg]
    metrics = Metrics()
    serving = Serving(
        settings, metrics, partial(_load_ranker, settings), partial(_compile_spare, settings)
    )
    feedback = FeedbackLog(settings, metrics)
    state = ServiceState(settings=settings, metrics=metrics, serving=serving, feedback=feedback)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(feedback.start)
        await serving.start(ranker)
        try:
            yield
        finally:
            await serving.close()
            await asyncio.to_thread(feedback.close)

    app = FastAPI(
        title="Retrieval chatbot",
        summary="Ranks repository responses for a conversation with a dual-encoder LSTM.",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(
        PublicCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )

    def body_limit(path: str) -> int:
        admin = path.startswith(ADMIN_PREFIX)
        return settings.max_admin_body_bytes if admin else settings.max_body_bytes

    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=body_limit,
        on_reject=metrics.rejected.labels("body_size").inc,
    )
    load_dir = os.environ.get(LOAD_DIR_ENV)
    if load_dir:  # one of several workers of `chatbot serve`
        app.add_middleware(ShareLoadMiddleware, folder=Path(load_dir))
    # Outermost, as before: times everything below it, CORS and limits included.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(router)
    app.include_router(feedback_router)
    app.include_router(admin_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _load_ranker(
    settings: Settings, model_dir: Path, index_dir: Path, spares: list[TextEncoder]
) -> Ranker:
    # Imported here: it may pull in TensorFlow (~5 s), which importing the app should not cost.
    from chatbot.ranker import Ranker, serving_runtime

    runtime = serving_runtime(settings.runtime, model_dir)
    if runtime == "tensorflow":
        if settings.model_threads:
            _limit_threads(settings.model_threads)
        if settings.xla_cache_dir is not None:
            _use_xla_cache(settings.xla_cache_dir)
    ranker = Ranker.load(
        model_dir, index_dir, settings.backend, spares, runtime, settings.model_threads or 1
    )
    logger.info("%s: encoders on %s", model_dir, "LiteRT" if runtime == "lite" else runtime)
    if ranker.index.shows_normalized_text:
        logger.warning(
            "%s was built from normalised UDC CSV rows: replies will be shown stemmed and "
            "lower-cased; rebuild it with `chatbot index --responses` on raw text",
            index_dir,
        )
    return ranker


def _compile_spare(settings: Settings, model_dir: Path, max_batch_size: int) -> TextEncoder:
    """The model's encoder alone (no index), compiled for every shape: a spare for the next
    version of its network (service.serving)."""
    from chatbot.artifact import load_artifact

    encoder = load_artifact(model_dir).encoder()
    encoder.warm_up(max_batch_size)
    return encoder


def _use_xla_cache(folder: Path) -> None:
    """Keeps compiled XLA programs in ``folder``: a later load of the same network (another
    worker, a restart, a new version of a model already served) reads them instead of
    compiling (15 s of warm-up became 5 s for the default model, docs/operations.md).
    TensorFlow reads the flag at its first compilation, which has not happened yet here."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("no XLA cache (%s): every load compiles", exc)
        return
    flag = f"--tf_xla_persistent_cache_directory={folder}"
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} {flag}".strip()


def _limit_threads(threads: int) -> None:
    """Caps TensorFlow's thread pools, which must happen before its first operation."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran something: a later load (a new version)
        pass
