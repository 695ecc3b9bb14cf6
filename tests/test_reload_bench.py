"""A short run of bench/reload_under_load.py on tiny bundles: while versions are published
and swapped in (by polling and by /admin/reload) under concurrent clients, no request fails
and the served version changes once per publication. (Its latency figures are the bench's
business, not a test's.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import tiny_bundle


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "reload_under_load", REPO / "bench" / "reload_under_load.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_swaps_under_load_lose_no_request(tmp_path: Path) -> None:
    bench = _bench_module()
    a = tiny_bundle(tmp_path / "a", seed=0)
    b = tiny_bundle(tmp_path / "b", seed=1)
    argv = ["--bundle", *map(str, a), "--bundle", *map(str, b)]
    argv += ["--clients", "4", "--seconds", "16", "--warmup", "1", "--swaps", "3"]
    argv += ["--workers", "1", "--poll-s", "1", "--json", str(tmp_path / "result.json")]

    result = bench.main(argv)

    assert result["requests"] > 100
    assert result["failed"] == 0
    assert result["version_changes"] == 3
    assert result["versions"] == ["v000001", "v000002", "v000003", "v000004"]
    assert [s["how"] for s in result["swaps"]] == ["poll", "reload", "poll"]
