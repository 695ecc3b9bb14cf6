"""HTTP endpoints: answer a conversation, health and readiness probes, metrics, the chat page."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import BatcherDep, MetricsDep, RankerDep, SettingsDep, StateDep
from service.schemas import RespondRequest, RespondResponse, ResponseItem
from service.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"

logger = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/respond",
    responses={
        413: {"description": "too many turns or characters"},
        503: {"description": "model not loaded, or it failed"},
    },
)
async def respond(
    request: RespondRequest,
    ranker: RankerDep,
    batcher: BatcherDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> RespondResponse:
    """Best responses to a conversation, from the repository or from ``candidates``."""
    start = time.perf_counter()
    _check_limits(request, settings)
    try:
        if request.candidates is None:
            # Normalised here, on the event loop: the model thread only encodes and searches.
            query = ranker.prepare(request.context)
            metrics.stage_seconds.labels("normalise").observe(time.perf_counter() - start)
            hits = await batcher.respond(query, request.k)
        else:
            k = min(request.k, len(request.candidates))
            hits = await batcher.rank_candidates(request.context, request.candidates, k)
    except Exception as exc:
        # Input was validated above, so what is left is the server's fault.
        logger.exception("ranker failed")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "model error") from exc
    return RespondResponse(
        responses=[ResponseItem(text=hit.text, score=float(hit.score)) for hit in hits],
        model=ranker.model_version,
        took_ms=(time.perf_counter() - start) * 1000,
    )


def _check_limits(request: RespondRequest, settings: Settings) -> None:
    turns = request.context
    if len(turns) > settings.max_turns:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"context has {len(turns)} turns; at most {settings.max_turns} are accepted",
        )
    chars = sum(map(len, turns)) + sum(map(len, request.candidates or ()))
    if chars > settings.max_chars:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"context and candidates have {chars} characters; "
            f"at most {settings.max_chars} are accepted",
        )
    if request.k > settings.max_k:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"k: must be at most {settings.max_k}"
        )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers, whether or not the model loaded."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "model or index not loaded"}})
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: 200 once the model and index are loaded, else 503 with the reason."""
    if state.ranker is None:
        return JSONResponse(
            {"status": "not ready", "detail": state.not_ready},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ready", "model": state.ranker.model_version})


@router.get("/metrics", include_in_schema=False)
async def metrics_page(metrics: MetricsDep) -> Response:
    """Prometheus metrics; with several worker processes, summed over all of them."""
    return Response(generate_latest(metrics.exposition_registry()), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
