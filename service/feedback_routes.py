"""``POST /feedback``: a user's vote on an answer, stored with what the bot was answering."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Response, status

from chatbot.errors import StoreError
from chatbot.store.records import Feedback
from service.deps import FeedbackDep, MetricsDep
from service.schemas import FeedbackRequest, FeedbackResponse, error_responses

logger = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/feedback",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": FeedbackResponse, "description": "the same vote was stored before"},
        **error_responses(400, 404, 413, 422, 503),
    },
)
async def post_feedback(
    body: FeedbackRequest, response: Response, feedback: FeedbackDep, metrics: MetricsDep
) -> FeedbackResponse:
    """Stores a vote on an answer once (a retry of the same vote answers 200, not 201), with
    the context, the replies shown, the model version and the time."""
    try:
        exchange = await asyncio.to_thread(feedback.find, body.request_id)
        if exchange is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"request_id {body.request_id}: no such answer (it may be older than the "
                "database, or from another service)",
            )
        # What the user saw: the ranked replies, and the reply (the fallback, if it abstained).
        shown = {reply["text"] for reply in exchange.replies} | {exchange.reply}
        voted = body.response if body.response is not None else exchange.reply
        if voted not in shown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "response: not one of the replies shown for this request_id",
            )
        stored = await asyncio.to_thread(
            feedback.add_feedback,
            Feedback(body.request_id, body.vote, voted, body.comment),
        )
    except KeyError as exc:  # removed between the two steps
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"request_id {body.request_id}: no such answer"
        ) from exc
    except StoreError as exc:
        metrics.store_errors.labels("feedback").inc()
        logger.warning("feedback not stored: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the feedback database is unavailable; nothing was stored, please retry later",
        ) from exc
    if stored.duplicate:
        response.status_code = status.HTTP_200_OK
    return FeedbackResponse(id=stored.id, duplicate=stored.duplicate)
