"""Where the real dialogue data lives: read by path, never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "CHATBOT_SHARED_DATA"


def shared_data_dir(value: str | Path | None = None) -> Path:
    """``value``, else ``$CHATBOT_SHARED_DATA``, else ``../shared/data``."""
    return Path(value or os.environ.get(SHARED_DATA_ENV) or "../shared/data")
