"""``chatbot publish`` and ``chatbot serve --repository``, as real processes: every worker
swaps to a new version, and a kill -9 during a repository edit loses nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from chatbot import bundles
from chatbot_cli import main
from tests.helpers import tiny_bundle
from tests.live_server import call, serving, wait_for, worker_pids

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Path, Path], ...]:
    root = tmp_path_factory.mktemp("bundles")
    return tiny_bundle(root / "a", seed=0), tiny_bundle(root / "b", seed=1)


def test_publish_prints_the_version_and_refuses_a_mismatch(two_bundles, tmp_path, capsys):
    (model_a, index_a), (_, index_b) = two_bundles
    repo = tmp_path / "repo"
    argv = ["publish", "--model", str(model_a), "--repository", str(repo)]

    assert main([*argv, "--index", str(index_a)]) == 0
    assert capsys.readouterr().out == "v000001\n"
    assert main([*argv, "--index", str(index_b)]) == 2
    assert "error: " in capsys.readouterr().err
    assert bundles.versions(repo) == ["v000001"]


def _served_versions(url: str, n: int) -> set[str]:
    found = set()
    for _ in range(n):
        status, body = call(f"{url}/respond", {"context": ["hi"], "k": 1})
        assert status == 200, body
        found.add(json.loads(body)["model"])
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_every_worker_swaps_to_a_published_version(two_bundles, tmp_path):
    (model_a, index_a), (model_b, index_b) = two_bundles
    repo = tmp_path / "repo"
    bundles.publish(repo, model_a, index_a)
    env = {"CHATBOT_ADMIN_TOKEN": TOKEN, "CHATBOT_POLL_S": "0", "CHATBOT_MAX_BATCH_SIZE": "4"}
    argv = ["--repository", str(repo), "--workers", "2"]
    with serving(argv, env, log=tmp_path / "serve.log") as (server, url):
        wait_for(lambda: len(worker_pids(server.pid)) == 2, 60, "two workers")
        wait_for(lambda: call(f"{url}/readyz")[0] == 200, 120, "a ready worker")
        # Published while the second worker may still be loading v000001: it must not miss it.
        bundles.publish(repo, model_b, index_b)
        status, body = call(f"{url}/admin/reload", {}, AUTH)

        assert status == 200 and json.loads(body)["serving"] == "v000002"
        # The other worker sees the reload marker within a second or two, then loads.
        wait_for(lambda: _served_versions(url, 10) == {"v000002"}, 60, "both workers on v2")


@pytest.mark.slow
def test_a_kill_during_an_edit_leaves_whole_versions_only(two_bundles, tmp_path):
    (model_a, index_a), _ = two_bundles
    repo = tmp_path / "repo"
    bundles.publish(repo, model_a, index_a)
    env = {"CHATBOT_ADMIN_TOKEN": TOKEN, "CHATBOT_POLL_S": "0", "CHATBOT_MAX_BATCH_SIZE": "4"}
    argv = ["--repository", str(repo), "--workers", "1"]
    # Enough new responses that normalising, encoding and writing them takes seconds.
    edit = {"add": [f"answer number {i} is hello good morning" for i in range(60_000)]}
    with serving(argv, env, log=tmp_path / "serve.log") as (server, url):
        wait_for(lambda: call(f"{url}/readyz")[0] == 200, 120, "the service")
        sender = threading.Thread(target=call, args=(f"{url}/admin/responses", edit, AUTH))
        sender.start()
        # The bundle is being staged: its model is linked in, its index is being written.
        wait_for(lambda: any(repo.glob(".staging-*/model")), 60, "the edit to be staged")
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        sender.join()

    published = bundles.versions(repo)
    assert published[0] == "v000001"  # no earlier version is lost
    for version in published:  # and every version there is whole
        bundles.check_bundle(repo / version / "model", repo / version / "index")
    with serving(argv, env) as (_, url):
        wait_for(lambda: call(f"{url}/readyz")[0] == 200, 120, "the restarted service")
        assert _served_versions(url, 2) == {published[-1]}
