"""Prometheus metrics, kept in a registry per app so that apps (and tests) never share counters.

With several worker processes (``chatbot serve --workers N``) each worker writes its values
to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when
that variable is set before prometheus_client is imported), and ``/metrics``, whichever worker
answers it, adds up the files of all of them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "chatbot_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chatbot_request_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            # Answers take ~20 ms on a 100k repository and ~100 ms on 1M (docs/performance.md).
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "chatbot_batch_size",
            "Contexts per model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.model_seconds = Histogram(
            "chatbot_model_seconds",
            "Time of one model call (Ranker.respond, a whole batch) on the model thread.",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "chatbot_stage_seconds",
            "Time of one stage of answering: normalise (per request, in the handler); encode, "
            "neural search, lexical search, sentence encode, semantic search, fusion and "
            "filters (per model call).",
            ["stage"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=self.registry,
        )

        self.bundle_swaps = Counter(
            "chatbot_bundle_swaps",
            "New versions that replaced the serving one.",
            registry=self.registry,
        )
        self.bundles_refused = Counter(
            "chatbot_bundles_refused",
            "Versions of the model repository that failed to load and were refused.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "chatbot_rejected_requests",
            "Requests turned away by a limit: body size, rate, deadline.",
            ["reason"],
            registry=self.registry,
        )
        self.abstained = Counter(
            "chatbot_abstained",
            "Replies below the confidence threshold, answered with the fallback text.",
            registry=self.registry,
        )
        self.feedback = Counter(
            "chatbot_feedback", "Votes stored.", ["vote"], registry=self.registry
        )
        self.store_errors = Counter(
            "chatbot_store_errors",
            "Database operations that failed (the service answered without them).",
            ["operation"],
            registry=self.registry,
        )
        self.exchanges_dropped = Counter(
            "chatbot_exchanges_dropped",
            "Answered requests never stored: the database was away longer than the buffer.",
            registry=self.registry,
        )

    def observe_stages(self, seconds: dict[str, float]) -> None:
        for stage, value in seconds.items():
            self.stage_seconds.labels(stage).observe(value)

    def exposition_registry(self) -> CollectorRegistry:
        """What ``/metrics`` shows: this app's registry, or every worker's values added up."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        return registry


class MetricsMiddleware:
    """Pure ASGI middleware counting HTTP requests by route template (bounded labels) and status.

    Starlette's function-style ``app.middleware("http")`` wraps every request in extra tasks
    and streams; this one only watches the messages go by, so it costs microseconds.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            # The router stores the matched route in the scope it was handed (this one).
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
