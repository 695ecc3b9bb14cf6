"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder: ``$CHATBOT_SHARED_DATA`` or ``<repo>/../shared/data``.

    Absent data skips the test on a developer machine but fails it in CI, where it must exist.
    """
    path = Path(os.environ.get("CHATBOT_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {path} (required in CI)")
        pytest.skip("../shared/data not found: set CHATBOT_SHARED_DATA")
    return path
