"""FastAPI dependencies: how a route reaches the settings, the model and the batcher.

Tests replace any of these with ``app.dependency_overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status

from service.batching import MicroBatcher
from service.metrics import Metrics
from service.settings import Settings

if TYPE_CHECKING:
    # Only for type checkers: importing the ranker pulls in TensorFlow, which app.py defers.
    from chatbot.ranker import Ranker


@dataclass
class ServiceState:
    """What the app holds between requests; ``not_ready`` says why ``ranker`` is missing."""

    settings: Settings
    metrics: Metrics
    ranker: Ranker | None = None
    batcher: MicroBatcher | None = None
    not_ready: str = "model is loading"


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


def get_ranker(state: StateDep) -> Ranker:
    if state.ranker is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {state.not_ready}")
    return state.ranker


def get_batcher(state: StateDep) -> MicroBatcher:
    if state.batcher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {state.not_ready}")
    return state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RankerDep = Annotated["Ranker", Depends(get_ranker)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
