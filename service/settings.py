"""Service configuration, read from ``CHATBOT_*`` environment variables or passed explicitly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatbot.search import BACKENDS
from chatbot.store.database import DEFAULT_URL
from service.batching import MAX_BATCH_SIZE
from service.schemas import MAX_CANDIDATES, MAX_CHARS, MAX_K, MAX_TURNS


def usable_cores() -> int:
    """The CPU cores this process may run on (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


class Settings(BaseSettings):
    """Everything the service needs to start; build it in ``main``/``create_app``, never at import.

    The model comes from a model repository (``repository``, hot-swapped when a new version
    is published) or from one artifact and its index (``model_dir`` and ``index_dir``).

    Example:
        >>> Settings(model_dir="runs/m", index_dir="runs/i", batching=False).max_k
        50
        >>> Settings(repository="runs/repo").poll_s
        10.0
    """

    model_config = SettingsConfigDict(env_prefix="CHATBOT_", extra="forbid")

    model_dir: Path | None = Field(
        default=None, description="model artifact directory (chatbot train / export)"
    )
    index_dir: Path | None = Field(
        default=None, description="pre-encoded response repository (chatbot index)"
    )
    repository: Path | None = Field(
        default=None, description="model repository of published bundles (chatbot publish)"
    )
    version: str | None = Field(
        default=None, description="serve this version of the repository, not the newest"
    )
    poll_s: float = Field(
        default=10.0,
        ge=0,
        description="how often to look for a new version in the repository (0: only when "
        "POST /admin/reload asks)",
    )
    spare_model: bool = Field(
        default=True,
        description="with a repository: compile a spare copy of the serving network after "
        "startup, so that its next version swaps in without compiling",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="bearer token of the /admin endpoints (unset: they answer 403)",
    )
    backend: str = Field(
        default="auto",
        description=f"search backend: {', '.join(BACKENDS)} (auto: the index's stored "
        "approximate index when it has one, else exact)",
    )

    max_turns: int = Field(
        default=MAX_TURNS, ge=1, le=MAX_TURNS, description="most turns accepted in one context"
    )
    max_chars: int = Field(
        default=MAX_CHARS,
        ge=1,
        le=MAX_CHARS,
        description="most characters in one turn or candidate",
    )
    max_k: int = Field(
        default=MAX_K, ge=1, le=MAX_K, description="most responses one request may ask for"
    )
    max_candidates: int = Field(
        default=MAX_CANDIDATES,
        ge=1,
        le=MAX_CANDIDATES,
        description="most candidates one request may ask to rank",
    )
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="largest request body of the public endpoints"
    )
    max_admin_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="largest request body of /admin endpoints"
    )
    rate_limit_per_s: float = Field(
        default=0.0,
        ge=0,
        description="requests per second each client address may send to /respond, on "
        "average (0: no limit)",
    )
    rate_limit_burst: int = Field(
        default=20, ge=1, description="requests a client may send at once before the rate applies"
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="a /respond request still waiting after this gets a 503"
    )

    batching: bool = Field(
        default=True, description="gather concurrent requests into one model call"
    )
    batch_window_ms: float = Field(default=2.0, ge=0, description="how long a batch waits to fill")
    max_batch_size: int = Field(
        default=MAX_BATCH_SIZE, ge=1, description="the most contexts one model call takes"
    )

    # The embeddable widget posts from other sites' pages; no cookies are involved, so "*" is safe.
    cors_origins: list[str] = ["*"]
    workers: int = Field(
        default_factory=usable_cores,
        ge=1,
        description="worker processes of `chatbot serve` (default: one per usable CPU core)",
    )
    runtime: Literal["auto", "tensorflow", "lite"] = Field(
        default="auto",
        description="where the model's encoders run: `lite` (LiteRT; no TensorFlow in the "
        "worker, about 400 MiB less each) needs an artifact with them converted (`chatbot "
        "lite`); `auto` takes it when there is no GPU",
    )
    model_threads: int = Field(
        default=0,
        ge=0,
        description="threads of each worker's model (0: TensorFlow's default, all cores; "
        "LiteRT: 1); `chatbot serve --workers N` sets cores / N so workers do not fight for "
        "cores",
    )
    xla_cache_dir: Path | None = Field(
        default_factory=lambda: Path.home() / ".cache" / "chatbot" / "xla",
        description="where compiled XLA programs are kept between loads, so that a worker "
        "that starts, or a new version of a model already seen, skips most of its warm-up "
        "(empty: no cache); per machine, as the programs are compiled for its CPU",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    database_url: str = Field(
        default=DEFAULT_URL,
        description="where exchanges, feedback and sessions are kept (SQLAlchemy URL): an "
        "SQLite file by default, postgresql://user:password@host/db in production",
    )
    database_timeout_s: float = Field(
        default=2.0, gt=0, description="a session read or write slower than this is skipped"
    )
    min_confidence: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="below this calibrated confidence the bot answers with the fallback text "
        "(a request's min_confidence overrides it)",
    )
    fallback: str = Field(
        default="I'm not sure — could you tell me more?",
        min_length=1,
        description="what the bot says when it is not sure enough",
    )
    session_turns: int = Field(
        default=20, ge=1, le=MAX_TURNS, description="turns a session keeps (its latest)"
    )
    session_idle_s: float = Field(
        default=1800.0, gt=0, description="a session unused this long is forgotten"
    )
    max_sessions: int = Field(
        default=100_000, ge=1, description="sessions kept at most (the least recent go first)"
    )

    @field_validator("xla_cache_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_model_source(self) -> Settings:
        pair = (self.model_dir is not None, self.index_dir is not None)
        if self.repository is not None:
            if any(pair):
                raise ValueError("give either a model repository or a model and an index, not both")
        elif pair != (True, True):
            raise ValueError(
                "say what to serve: a model repository (--repository / CHATBOT_REPOSITORY), "
                "or a model and its index (--model and --index / CHATBOT_MODEL_DIR and "
                "CHATBOT_INDEX_DIR)"
            )
        if self.version is not None and self.repository is None:
            raise ValueError("a version (--version / CHATBOT_VERSION) needs a model repository")
        return self

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown search backend {value!r}; choose from {', '.join(BACKENDS)}")
        return value
