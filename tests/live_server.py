"""A real ``chatbot serve`` process for tests: start it, call it, wait for it, stop it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    """``(status, body)``; status 0 when the server could not be reached."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pids(pid: int) -> set[int]:
    """The worker processes uvicorn spawned (not multiprocessing's resource tracker)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            if b"spawn_main" in command:
                found.add(int(child))
    return found


@contextmanager
def serving(
    argv: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Runs ``chatbot serve ARGV --port P``; yields the process and its base URL. Settings
    come only from ``argv`` and ``env``: the caller's CHATBOT_* variables are dropped."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    # The test's own database (tests/conftest.py), never the checkout's artifacts/.
    if "CHATBOT_DATABASE_URL" in os.environ:
        clean["CHATBOT_DATABASE_URL"] = os.environ["CHATBOT_DATABASE_URL"]
    out = log.open("w") if log is not None else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "chatbot_cli", "serve", *argv, "--port", str(port)],
        env={**clean, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]
