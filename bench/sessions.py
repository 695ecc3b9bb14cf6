"""What a server-side session costs a request, by where it is kept.

``chatbot serve`` runs one worker process per core behind one listening socket: the kernel
hands each connection to any worker, so a session held in one worker's memory is missed
whenever the next message lands on another (with 2 workers, about half the time), and no
load balancer in front can pin a session to a worker it cannot see. The choice is then
between the database the service already writes (every worker and replica sees it) and
sticky routing to single-worker replicas. This script measures the database's price: one
session read before the answer and one write after it, as ``/respond`` does, against a
plain dict (the in-memory store) as the baseline of the ratios.

For each store, ``--requests`` sequential requests of a conversation growing to 20 turns,
then the same from ``--threads`` threads at once; p50/p99 milliseconds per request (read +
write). PostgreSQL runs when Debian's ``postgresql`` is installed (a throw-away cluster).

Run: ``.venv/bin/python bench/sessions.py`` (``--requests 200`` to shrink).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from chatbot.store.records import FeedbackStore

TURN = "my wifi stopped working after the upgrade to 12.04, what should I check first?"


class DictSessions:
    """The in-memory alternative: one worker's dict."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[str]] = {}

    def session_turns(self, session_id: str, idle_s: float) -> list[str]:
        return list(self.sessions.get(session_id, []))

    def save_session(self, session_id: str, turns: list[str]) -> None:
        self.sessions[session_id] = list(turns)


def one_request(store: object, session_id: str) -> float:
    start = time.perf_counter()
    turns = store.session_turns(session_id, 1800.0)  # type: ignore[attr-defined]
    store.save_session(session_id, [*turns, TURN, "a reply"][-20:])  # type: ignore[attr-defined]
    return (time.perf_counter() - start) * 1000


def measure(store: object, requests: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    sequential = np.array([one_request(store, f"seq-{i % 50}") for i in range(requests)])
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(one_request, store, f"par-{i % 50}") for i in range(requests)]
        parallel = np.array([f.result() for f in futures])
    return sequential, parallel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    stores: dict[str, Callable[[], object]] = {"memory (dict, one worker)": DictSessions}
    folder = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    stores["sqlite file (WAL)"] = lambda: FeedbackStore.open(f"sqlite:///{folder}/s.sqlite3")
    server = None
    from tests.postgres import find_bin, postgres_server

    bin_dir = find_bin()
    if bin_dir is not None:
        server = postgres_server(bin_dir)
        pg = server.__enter__()
        stores["postgresql (local server)"] = lambda: FeedbackStore.open(pg.url)
    else:
        print("postgresql: not installed, left out")

    print(f"{args.requests} requests (read + write of a session), then {args.threads} threads")
    print(f"{'store':<28}{'p50 ms':>9}{'p99 ms':>9}{'x memory':>10}{'p50 ms (threads)':>19}")
    baseline = None
    try:
        for name, make in stores.items():
            sequential, parallel = measure(make(), args.requests, args.threads)
            p50 = float(np.percentile(sequential, 50))
            baseline = baseline or p50
            print(
                f"{name:<28}{p50:>9.3f}{np.percentile(sequential, 99):>9.3f}"
                f"{p50 / baseline:>10.1f}{np.percentile(parallel, 50):>19.3f}"
            )
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
