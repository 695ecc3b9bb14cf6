"""What sessions cost on the served path: ``chatbot serve`` with a real model and index, one
client, the same questions sent without a session, with a new session each time (one session
read and one write per request, the context unchanged), and five to a session (the context
grows, as in a conversation).

The server is started here (``--workers 1``, an SQLite database in a temporary folder) and
the questions are the held-out ones of ``docs/ubuntu_questions.txt``. Each mode runs
``--rounds`` times over the questions, modes interleaved, after a warm-up; the ratio is each
mode's p50 against the no-session p50 of the same run.

Run: ``.venv/bin/python bench/served_latency.py --model artifacts/ubuntu/model --index
artifacts/ubuntu/index`` (the Ubuntu model of ``make ubuntu-model``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "docs" / "ubuntu_questions.txt"
MODES = ("no session", "new session each request", "5 questions a session")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: dict) -> float:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()
    return (time.perf_counter() - start) * 1000


def body_for(mode: str, question: str, round_: int, i: int) -> dict:
    body: dict = {"context": [question], "k": 5}
    if mode == MODES[1]:
        body["session_id"] = f"new-{round_}-{i}-{time.time_ns()}"
    elif mode == MODES[2]:
        body["session_id"] = f"talk-{round_}-{i // 5}"
    return body


def wait_ready(url: str, server: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"chatbot serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise SystemExit("chatbot serve did not become ready")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4, help="passes over the questions")
    parser.add_argument(
        "--runtime", default="auto", help="chatbot serve --runtime (auto, tensorflow, lite)"
    )
    args = parser.parse_args(argv)
    questions = [
        line.strip()
        for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    folder = Path(tempfile.mkdtemp(prefix="bench-served-latency-"))
    port = free_port()
    env = {**os.environ, "CHATBOT_DATABASE_URL": f"sqlite:///{folder / 'feedback.sqlite3'}"}
    command = [sys.executable, "-m", "chatbot_cli", "serve", "--model", str(args.model)]
    command += ["--index", str(args.index), "--workers", "1", "--port", str(port)]
    command += ["--runtime", args.runtime]
    log = (folder / "serve.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"starting chatbot serve ({args.model}, {args.index}) ...", flush=True)
        wait_ready(url, server)
        for question in questions[:5]:
            post(f"{url}/respond", {"context": [question]})
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                for i, question in enumerate(questions):
                    times[mode].append(post(f"{url}/respond", body_for(mode, question, round_, i)))
    finally:
        server.terminate()
        server.wait(30)
    baseline = statistics.median(times[MODES[0]])
    print(
        f"{len(questions)} questions x {args.rounds} rounds, one client, --workers 1, SQLite, "
        f"--runtime {args.runtime}"
    )
    print(f"{'mode':<28}{'p50 ms':>9}{'p99 ms':>9}{'x no session':>14}")
    for mode, values in times.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[max(0, int(len(values) * 0.99) - 1)]
        print(f"{mode:<28}{p50:>9.1f}{p99:>9.1f}{p50 / baseline:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
