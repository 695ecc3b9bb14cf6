"""HTTP endpoints: answer a conversation, health and readiness probes, metrics, the chat page."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatbot.store.records import Exchange, new_request_id
from service.deps import MetricsDep, ServiceState, ServingDep, SettingsDep, StateDep
from service.limits import retry_after_header
from service.metrics import Metrics
from service.schemas import (
    ReadyResponse,
    RespondRequest,
    RespondResponse,
    ResponseItem,
    error_responses,
)
from service.serving import LiveBundle, NotReady, Serving
from service.settings import Settings

if TYPE_CHECKING:
    from chatbot.ranker import Hit, Ranker

STATIC_DIR = Path(__file__).parent / "static"

logger = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/respond",
    responses=error_responses(400, 413, 422, 429, 503),
)
async def respond(
    body: RespondRequest,
    request: Request,
    serving: ServingDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    state: StateDep,
) -> RespondResponse:
    """Best responses to a conversation, from the repository or from ``candidates``, with the
    calibrated confidence of the best one (the fallback text below the threshold)."""
    start = time.perf_counter()
    _check_rate(request, state)
    _check_limits(body, settings)
    context = body.context
    if body.session_id is not None:
        earlier = await state.feedback.session_turns(body.session_id)
        context = [*earlier, *context][-settings.max_turns :]
    answer, exchange = await _answer_from_serving(body, context, serving, settings, metrics, start)
    if answer.abstained:
        metrics.abstained.inc()
    state.feedback.record(exchange)
    if body.session_id is not None:
        said = [answer.reply] if not answer.abstained else []
        await state.feedback.save_session(body.session_id, [*context, *said])
    answer.took_ms = (time.perf_counter() - start) * 1000
    return answer


async def _answer_from_serving(
    body: RespondRequest,
    context: list[str],
    serving: Serving,
    settings: Settings,
    metrics: Metrics,
    start: float,
) -> tuple[RespondResponse, Exchange]:
    """The answer and its feedback record, from the bundle serving now.

    A function of its own so that nothing of the bundle outlives it: the session save that
    follows may wait on the database, and a swapped-out version is freed (and the heap frozen
    again, ``service.serving``) only when no request refers to it.
    """
    # Two at least: the confidence reads the best reply's margin over the runner-up.
    wanted = max(body.k, 2)
    try:
        async with serving.use() as live:
            hits, normalized = await asyncio.wait_for(
                _answer(context, body.candidates, wanted, live, metrics, start),
                settings.request_timeout_s,
            )
    except NotReady as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {exc}") from exc
    except TimeoutError as exc:
        # The batcher skips the cancelled request if it has not reached the model yet.
        metrics.rejected.labels("deadline").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"no answer within {settings.request_timeout_s:g} s; the service is overloaded",
        ) from exc
    except Exception as exc:
        # Input was validated above, so what is left is the server's fault.
        logger.exception("ranker failed")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "model error") from exc
    answer = _decide(hits, body, live.ranker, settings, live.version)
    return answer, _exchange(answer, context, normalized, body.session_id, live.ranker)


def _decide(
    hits: list[Hit], body: RespondRequest, ranker: Ranker, settings: Settings, version: str
) -> RespondResponse:
    """The answer: the best reply, or the fallback when the model is not sure enough."""
    job = "candidates" if body.candidates is not None else "repository"
    scores = np.array([hit.score for hit in hits], dtype=np.float64)
    confidence = ranker.calibration.confidence(job, scores) if hits else 0.0
    threshold = body.min_confidence if body.min_confidence is not None else settings.min_confidence
    abstained = not hits or confidence < threshold
    return RespondResponse(
        request_id=new_request_id(),
        reply=settings.fallback if abstained else hits[0].text,
        confidence=confidence,
        abstained=abstained,
        session_id=body.session_id,
        responses=[ResponseItem(text=hit.text, score=float(hit.score)) for hit in hits[: body.k]],
        model=version,
        took_ms=0.0,
    )


def _exchange(
    answer: RespondResponse,
    context: list[str],
    normalized: str,
    session_id: str | None,
    ranker: Ranker,
) -> Exchange:
    return Exchange(
        request_id=answer.request_id,
        model=answer.model,
        context=context,
        context_normalized=normalized,
        normalization=ranker.normalizer.mode,
        replies=[item.model_dump() for item in answer.responses],
        reply=answer.reply,
        confidence=answer.confidence,
        abstained=answer.abstained,
        session_id=session_id,
    )


async def _answer(
    context: list[str],
    candidates: list[str] | None,
    k: int,
    live: LiveBundle,
    metrics: Metrics,
    start: float,
) -> tuple[list[Hit], str]:
    """The hits, and the context as the model read it (normalised)."""
    # Normalised here, on the event loop: the model thread only encodes and scores.
    query = live.ranker.prepare(context)
    metrics.stage_seconds.labels("normalise").observe(time.perf_counter() - start)
    if candidates is None:
        return await live.batcher.respond(query, k), query.context
    hits = await live.batcher.rank_candidates(query, candidates, min(k, len(candidates)))
    return hits, query.context


def _check_rate(request: Request, state: ServiceState) -> None:
    limiter = state.rate_limiter
    if not limiter.enabled:
        return
    client = request.client.host if request.client is not None else "unknown"
    wait = limiter.retry_after(client)
    if wait > 0:
        state.metrics.rejected.labels("rate").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many requests from {client}: at most {limiter.rate:g} a second "
            f"(bursts of {limiter.burst}); retry in {wait:.1f} s",
            headers={"Retry-After": retry_after_header(wait)},
        )


def _check_limits(request: RespondRequest, settings: Settings) -> None:
    """The service's own limits, where its settings set them below the documented ones
    (those are checked, with a 422, by :class:`RespondRequest`)."""
    turns = request.context
    if len(turns) > settings.max_turns:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"context has {len(turns)} turns; at most {settings.max_turns} are accepted",
        )
    longest = max(map(len, [*turns, *(request.candidates or ())]))
    if longest > settings.max_chars:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a turn or candidate has {longest} characters; "
            f"at most {settings.max_chars} are accepted",
        )
    if request.candidates is not None and len(request.candidates) > settings.max_candidates:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(request.candidates)} candidates; at most {settings.max_candidates} are accepted",
        )
    if request.k > settings.max_k:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"k: must be at most {settings.max_k}"
        )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers, whether or not the model loaded."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
async def readyz(serving: ServingDep) -> ReadyResponse:
    """Readiness: 200 once a model and its index are loaded, else 503 with the reason."""
    live = serving.current
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {serving.not_ready}")
    return ReadyResponse(
        status="ready",
        model=live.version,
        model_version=live.ranker.model_version,
        calibrated=live.ranker.calibration.fitted,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics_page(metrics: MetricsDep) -> Response:
    """Prometheus metrics; with several worker processes, summed over all of them."""
    return Response(generate_latest(metrics.exposition_registry()), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
