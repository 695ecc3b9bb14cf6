"""Requests spread over the worker processes of one ``chatbot serve``, not just connections.

uvicorn's workers share one listening socket, and a keep-alive connection stays with the
worker that accepted it. A client that opens many connections at once (a load generator, a
proxy's connection pool) often finds most of them on one worker: 32 connections to two
workers landed 16/16 in only 4 of 25 starts, and a 20/12 spread doubled the p99
(docs/performance.md). So each worker publishes how many requests it has in flight, and a
worker holding more than its share (the mean over the workers, plus :data:`SLACK`) answers
with ``Connection: close``: the client reconnects, and the idle worker is the likelier to
accept. The spread then evens out within a few requests.

Each worker's count is 8 bytes in a file of its own (named by its process id) in a folder
that ``chatbot serve`` makes for its workers (:data:`LOAD_DIR_ENV`), memory-mapped by every
worker; a worker that has died is left out by process id.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> me = WorkerLoad(folder, pid=101)
    >>> other = WorkerLoad(folder, pid=os.getpid())  # a live process: counted as a peer
    >>> for _ in range(5):
    ...     me.started()
    >>> me.over_share()  # 5 in flight; with the peer's 0, the share is 2.5 + 1
    True
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOAD_DIR_ENV = "SERVE_WORKER_LOAD_DIR"
# Requests in flight a worker may hold above the mean before it sheds a connection: enough
# that two equal workers never trade connections back and forth.
SLACK = 1
PEERS_TTL_S = 1.0  # how long the list of peer workers is reused before the folder is read
_COUNT = struct.Struct("q")


class WorkerLoad:
    """This worker's requests in flight, published, and its peers' read.

    Args:
        folder: the folder the workers of one server share.
        pid: this worker's process id (its file's name).
    """

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = os.getpid() if pid is None else pid
        self.in_flight = 0
        path = folder / str(self.pid)
        path.write_bytes(bytes(_COUNT.size))
        with path.open("r+b") as f:
            self._mine = mmap.mmap(f.fileno(), _COUNT.size)
        self._peers: dict[int, mmap.mmap] = {}
        self._peers_read_at = -PEERS_TTL_S

    def started(self) -> None:
        self.in_flight += 1
        _COUNT.pack_into(self._mine, 0, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1
        _COUNT.pack_into(self._mine, 0, self.in_flight)

    def over_share(self) -> bool:
        """Whether this worker holds more requests than its share (mean + :data:`SLACK`)."""
        peers = [_COUNT.unpack_from(m, 0)[0] for m in self._peer_maps().values()]
        if not peers:
            return False
        mean = (self.in_flight + sum(peers)) / (len(peers) + 1)
        return self.in_flight > mean + SLACK

    def close(self) -> None:
        for m in (self._mine, *self._peers.values()):
            m.close()
        (self.folder / str(self.pid)).unlink(missing_ok=True)

    def _peer_maps(self) -> dict[int, mmap.mmap]:
        now = time.monotonic()
        if now - self._peers_read_at < PEERS_TTL_S:
            return self._peers
        self._peers_read_at = now
        alive = {}
        for path in self.folder.iterdir():
            if not path.name.isdigit() or int(path.name) == self.pid:
                continue
            pid = int(path.name)
            if not _alive(pid):
                path.unlink(missing_ok=True)  # a worker that died: uvicorn starts another
                continue
            alive[pid] = self._peers.pop(pid, None) or _map(path)
        for stale in self._peers.values():
            stale.close()
        self._peers = {pid: m for pid, m in alive.items() if m is not None}
        return self._peers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _map(path: Path) -> mmap.mmap | None:
    try:
        with path.open("rb") as f:
            return mmap.mmap(f.fileno(), _COUNT.size, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # gone, or not yet written
        return None


class ShareLoadMiddleware:
    """Counts this worker's HTTP requests in flight, and answers ``Connection: close`` while
    it holds more than its share (see the module's docstring).

    Args:
        app: the app below.
        folder: the folder this server's workers share; this worker's file is made at its
            first request (a worker still loading its model accepts no connection, so it
            must not draw any).
    """

    def __init__(self, app: ASGIApp, folder: Path) -> None:
        self.app = app
        self.folder = folder
        self.load: WorkerLoad | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.load is None:
            self.load = WorkerLoad(self.folder)
        load = self.load

        async def send_shedding(message: Message) -> None:
            if message["type"] == "http.response.start" and load.over_share():
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        load.started()
        try:
            await self.app(scope, receive, send_shedding)
        finally:
            load.finished()
