"""Operator endpoints: what is serving, check the repository now, edit the responses.

Every one needs ``Authorization: Bearer <CHATBOT_ADMIN_TOKEN>``. Without a configured token
they answer 403 (they are off); a missing or wrong token gets 401. They are left out of the
public CORS policy (:class:`service.limits.PublicCORSMiddleware`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chatbot import bundles
from service.deps import ServingDep, SettingsDep
from service.limits import ADMIN_PREFIX
from service.schemas import (
    EditRequest,
    EditResponse,
    ReloadResponse,
    StatusResponse,
    error_responses,
)
from service.serving import LiveBundle
from service.settings import Settings

if TYPE_CHECKING:
    from chatbot.index_edits import EditPlan

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="the service's CHATBOT_ADMIN_TOKEN")


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = settings.admin_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin endpoints are off: start the service with CHATBOT_ADMIN_TOKEN set to "
            "enable them",
        )
    given = credentials.credentials if credentials is not None else ""
    # Constant time: how long a comparison takes must not tell how much of a guess was right.
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send the admin token as 'Authorization: Bearer <CHATBOT_ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    prefix=ADMIN_PREFIX,
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 403),
)


@router.get("/status")
async def admin_status(serving: ServingDep, settings: SettingsDep) -> StatusResponse:
    """The serving version, the repository's newest, and the versions refused and why."""
    live = serving.current
    repository = settings.repository
    newest = bundles.newest(repository) if repository is not None else None
    return StatusResponse(
        serving=live.version if live is not None else None,
        model_version=live.ranker.model_version if live is not None else None,
        responses=len(live.ranker.index) if live is not None else None,
        repository=str(repository) if repository is not None else None,
        pinned=settings.version,
        newest=newest.version if newest is not None else None,
        poll_s=settings.poll_s,
        swaps=serving.swaps,
        spares=len(serving.spares),
        refused=serving.refused,
        not_ready=serving.not_ready,
    )


@router.post("/reload", responses=error_responses(409))
async def reload(serving: ServingDep, settings: SettingsDep) -> ReloadResponse:
    """Checks the repository now, in every worker and replica serving it; answers once this
    worker serves the version that should serve (or refused it)."""
    repository = _repository(settings)
    try:
        bundles.request_reload(repository)
    except OSError as exc:  # a read-only repository: the others will see it when they poll
        logger.warning("cannot touch the reload marker of %s: %s", repository, exc)
    result = await serving.check()
    return ReloadResponse(serving=result.serving, swapped=result.swapped, refused=result.refused)


@router.post("/responses", responses=error_responses(400, 409, 413, 422, 503))
async def edit_responses(
    edit: EditRequest, serving: ServingDep, settings: SettingsDep
) -> EditResponse:
    """Adds and removes responses: the additions are encoded by the serving model, and the
    edited repository is published as a new version of the bundle, which then serves.
    Earlier versions stay."""
    repository = _repository(settings)
    if settings.version is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the service is pinned to {settings.version} (CHATBOT_VERSION), so an edit "
            "would never serve; unpin it first",
        )
    # Imported here: index edits need TensorFlow, which importing the app defers.
    from chatbot.index_edits import EditError, plan_edit

    async with serving.edit_lock:
        async with serving.use() as live:
            if live.bundle is None or live.ranker.artifact is None:
                raise HTTPException(status.HTTP_409_CONFLICT, "not serving a repository bundle")
            try:
                # On a thread: matching texts reads every one (a second at a million).
                texts = live.ranker.index.texts
                plan = await asyncio.to_thread(plan_edit, texts, edit.add, edit.remove)
            except EditError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
            note = f"edit of {live.version}: {len(plan.add)} added, {plan.removed} removed"
            published = await asyncio.to_thread(_publish_edit, repository, live, plan, note)
        logger.info("published %s (%s)", published.version, note)
        result = await serving.check()
    bundles.request_reload(repository)
    if result.serving != published.version:
        reason = result.refused.get(published.version, "a newer version serves")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"published {published.version}, but it does not serve: {reason}",
        )
    return EditResponse(
        version=published.version,
        added=len(plan.add),
        removed=plan.removed,
        unchanged=plan.unchanged,
        not_found=plan.not_found,
        responses=len(plan.keep) + len(plan.add),
    )


def _publish_edit(repository: Path, live: LiveBundle, plan: EditPlan, note: str) -> bundles.Bundle:
    """Runs on a worker thread: encodes the additions, writes and publishes the bundle."""
    from chatbot.index_edits import write_edited_index

    ranker, bundle, artifact = live.ranker, live.bundle, live.ranker.artifact
    assert bundle is not None and artifact is not None

    def write_index(out: Path) -> None:
        encode = ranker.scorer.encoder.encode_responses
        write_edited_index(out, ranker.index, artifact, plan, encode)

    # The model's files are the serving bundle's, never changed: linked, not copied.
    return bundles.publish_with(
        repository, bundle.model_dir, write_index, note=note, link_model=True
    )


def _repository(settings: Settings) -> Path:
    if settings.repository is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the service serves --model/--index, not a model repository "
            "(start it with --repository to reload and edit)",
        )
    return settings.repository
