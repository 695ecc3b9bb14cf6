"""The spread of requests over workers: each worker's count in flight is seen by the others,
dead workers are left out, and a worker above its share asks the client to reconnect."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from service.worker_load import SLACK, ShareLoadMiddleware, WorkerLoad


@pytest.fixture
def peer(tmp_path: Path):
    """Another live process, posing as a peer worker (its file is written by this one)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield WorkerLoad(tmp_path, pid=process.pid)
    process.kill()
    process.wait()


def test_a_worker_over_the_mean_plus_slack_is_over_its_share(tmp_path, peer):
    me = WorkerLoad(tmp_path)
    for _ in range(3):
        peer.started()
    for n in range(1, 3 + 2 * SLACK + 2):
        me.started()
        # With the peer at 3 the mean is (n + 3) / 2: over it by more than SLACK once
        # n > 3 + 2·SLACK.
        assert me.over_share() == (n > 3 + 2 * SLACK), n
    while me.in_flight:
        me.finished()
    assert not me.over_share()


def test_alone_a_worker_is_never_over_its_share(tmp_path):
    me = WorkerLoad(tmp_path)
    for _ in range(10):
        me.started()
    assert not me.over_share()


def test_a_dead_worker_is_left_out_and_its_file_removed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = WorkerLoad(tmp_path, pid=int(done.stdout))  # the process has exited
    me = WorkerLoad(tmp_path)
    me.started()
    me.started()
    me.started()
    assert not me.over_share()  # the dead one's 0 would have made this one over its share
    assert not (tmp_path / str(dead.pid)).exists()


def test_the_middleware_sheds_only_while_over_share(tmp_path, peer):
    release = asyncio.Event()

    async def app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = ShareLoadMiddleware(app, tmp_path)

    async def request() -> list[tuple[bytes, bytes]]:
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        await middleware(scope, lambda: None, send)
        return list(sent[0]["headers"])

    async def run(n: int) -> list[list[tuple[bytes, bytes]]]:
        release.clear()
        tasks = [asyncio.create_task(request()) for _ in range(n)]
        await asyncio.sleep(0.01)  # all of them in flight
        release.set()
        return await asyncio.gather(*tasks)

    async def both() -> tuple[list, list]:
        return await run(1), await run(6)

    one, many = asyncio.run(both())
    assert one == [[(b"a", b"b")]]  # 1 in flight, the peer 0: within the slack
    # 6 against 0: the first answers find this worker over its share
    assert (b"connection", b"close") in many[0] and (b"a", b"b") in many[0]
    assert middleware.load is not None and middleware.load.in_flight == 0
