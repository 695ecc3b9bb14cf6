"""FastAPI dependencies: how a route reaches the settings, the metrics and what is serving.

Tests replace any of these with ``app.dependency_overrides``. They are ``async`` because they
only look an attribute up: FastAPI runs a plain ``def`` dependency on its thread pool, which
cost each request five thread hand-offs (measured: docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from service.feedback_log import FeedbackLog
from service.limits import RateLimiter
from service.metrics import Metrics
from service.serving import Serving
from service.settings import Settings


@dataclass
class ServiceState:
    """What the app holds between requests."""

    settings: Settings
    metrics: Metrics
    serving: Serving
    feedback: FeedbackLog
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(
            self.settings.rate_limit_per_s, self.settings.rate_limit_burst
        )


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


async def get_serving(state: StateDep) -> Serving:
    return state.serving


async def get_feedback(state: StateDep) -> FeedbackLog:
    return state.feedback


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ServingDep = Annotated[Serving, Depends(get_serving)]
FeedbackDep = Annotated[FeedbackLog, Depends(get_feedback)]
