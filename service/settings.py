"""Service configuration, read from ``CHATBOT_*`` environment variables or passed explicitly."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatbot.search import BACKENDS
from service.schemas import MAX_K


def usable_cores() -> int:
    """The CPU cores this process may run on (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


class Settings(BaseSettings):
    """Everything the service needs to start; build it in ``main``/``create_app``, never at import.

    Example:
        >>> Settings(model_dir="runs/m", index_dir="runs/i", batching=False).max_k
        50
    """

    model_config = SettingsConfigDict(env_prefix="CHATBOT_", extra="forbid")

    model_dir: Path = Field(description="model artifact directory (chatbot train / export)")
    index_dir: Path = Field(description="pre-encoded response repository (chatbot index)")
    backend: str = Field(
        default="auto",
        description=f"search backend: {', '.join(BACKENDS)} (auto: the index's stored "
        "approximate index when it has one, else exact)",
    )

    max_turns: int = Field(default=50, ge=1, description="most turns accepted in one context")
    max_chars: int = Field(
        default=10_000, ge=1, description="most characters in context + candidates"
    )
    max_k: int = Field(
        default=MAX_K, ge=1, le=MAX_K, description="most responses one request may ask for"
    )

    batching: bool = Field(
        default=True, description="gather concurrent requests into one model call"
    )
    batch_window_ms: float = Field(default=2.0, ge=0, description="how long a batch waits to fill")
    max_batch_size: int = Field(default=64, ge=1)

    # The embeddable widget posts from other sites' pages; no cookies are involved, so "*" is safe.
    cors_origins: list[str] = ["*"]
    workers: int = Field(
        default_factory=usable_cores,
        ge=1,
        description="worker processes of `chatbot serve` (default: one per usable CPU core)",
    )
    model_threads: int = Field(
        default=0,
        ge=0,
        description="TensorFlow threads of each worker's model (0: TensorFlow's default, all "
        "cores); `chatbot serve --workers N` sets cores / N so workers do not fight for cores",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown search backend {value!r}; choose from {', '.join(BACKENDS)}")
        return value
