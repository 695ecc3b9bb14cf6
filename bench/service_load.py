"""The HTTP service under load: latency and throughput with and without micro-batching.

Builds (once; reused from ``--workdir``) a model artifact with ``build_dual_encoder`` and
``save_artifact`` (LSTM 256, embedding 100, vocabulary 20k, untrained weights: latency does
not depend on them) and, for each repository size (100k and 1M by default), a generated index
(random normalised vectors, texts "response <i>") with ``save_index``. For each size and each
micro-batching setting (``CHATBOT_BATCHING``), it starts the service as a subprocess
(``python -m uvicorn --factory service.app:create_app`` on 127.0.0.1), waits for ``/readyz``,
warms it up (XLA compiles every new input shape once), then drives ``POST /respond`` from
this process with an async httpx client at 1 and 32 concurrent clients, each phase bounded by
``--requests`` and ``--seconds``, and stops the server.

Prints p50/p99 latency and requests/s per configuration, the ratio of 32-client to 1-client
throughput (goal >= 8x with micro-batching), and the 1M one-client p99 (goal <= 60 ms).

The client shares the machine's 2 cores with the server; its own cost is part of the figures.

Run: ``.venv/bin/python bench/service_load.py`` (``--sizes 20000 --seconds 5`` to shrink).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORDS = [f"word{i}" for i in range(2000)] + ["ubuntu", "install", "apt-get", "sudo", "grub"]


def build_model(path: Path, vocab_size: int, hidden: int, normalization: str) -> None:
    from chatbot.artifact import save_artifact
    from chatbot.config import ModelConfig
    from chatbot.model import build_dual_encoder
    from chatbot.vocab import PAD, UNK, Vocab

    config = ModelConfig(
        vocab_size=vocab_size, embedding_dim=100, hidden_size=hidden, normalization=normalization
    )
    vocab = Vocab([PAD, UNK, *WORDS, *(f"v{i}" for i in range(vocab_size - 2 - len(WORDS)))])
    model = build_dual_encoder(config, vocab_size=len(vocab))
    save_artifact(path, model, vocab, config, name="bench")


def ensure_artifacts(workdir: Path, sizes: list[int], args: argparse.Namespace) -> dict[int, Path]:
    from chatbot.artifact import load_artifact
    from chatbot.index import save_index

    model_dir = workdir / "model"
    if not (model_dir / "manifest.json").exists():
        print(f"building the model artifact in {model_dir} ...", flush=True)
        build_model(model_dir, args.vocab, args.hidden, args.normalization)
    artifact = load_artifact(model_dir)
    indexes = {}
    for n in sizes:
        index_dir = workdir / f"index-{n}"
        manifest = index_dir / "manifest.json"
        fresh = (
            manifest.exists()
            and json.loads(manifest.read_text()).get("model_checksum") == artifact.checksum
        )
        if not fresh:
            print(f"building a {n:,}-vector index in {index_dir} ...", flush=True)
            rng = np.random.default_rng(n)
            vectors = rng.standard_normal((n, artifact.model.encoding_dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            save_index(index_dir, vectors, [f"response {i}" for i in range(n)], artifact)
        indexes[n] = index_dir
    return indexes


def contexts(count: int, seed: int) -> list[list[str]]:
    """Conversations of 2-8 turns of 4-25 words: UDC-like, about 60-120 tokens."""
    rng = random.Random(seed)
    return [
        [" ".join(rng.choices(WORDS, k=rng.randint(4, 25))) for _ in range(rng.randint(2, 8))]
        for _ in range(count)
    ]


class Server:
    """``uvicorn --factory service.app:create_app`` in a subprocess, on 127.0.0.1."""

    def __init__(self, model: Path, index: Path, batching: bool, port: int, threads: int):
        env = {
            **os.environ,
            "CHATBOT_MODEL_DIR": str(model),
            "CHATBOT_INDEX_DIR": str(index),
            "CHATBOT_BATCHING": "true" if batching else "false",
            "CHATBOT_BACKEND": "exact",
            "OMP_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OMP_WAIT_POLICY": "PASSIVE",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        command = [
            sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    async def wait_ready(self, client, timeout_s: float) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                response = await client.get(f"{self.url}/readyz", timeout=2)
                if response.status_code == 200:
                    return time.perf_counter() - start
                detail = response.json().get("detail", "")
                if detail and detail != "model is loading":
                    raise RuntimeError(f"server not ready: {detail}\n{self.log_tail()}")
            await asyncio.sleep(0.5)
        raise TimeoutError(f"server not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


async def counters(client, url: str) -> dict[str, float]:
    """Model calls, contexts, and server-side /respond time so far, from /metrics."""
    text = (await client.get(f"{url}/metrics", timeout=10)).text
    wanted = {
        "chatbot_batch_size_count": "calls",
        "chatbot_batch_size_sum": "contexts",
        'chatbot_request_seconds_sum{route="/respond"}': "server_s",
        'chatbot_request_seconds_count{route="/respond"}': "answered",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


async def drive(client, url: str, bodies: list[dict], clients: int, requests: int, seconds: float):
    """``clients`` concurrent request loops; returns per-request seconds, errors and wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            body = bodies[sent % len(bodies)]
            sent += 1
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/respond", json=body, timeout=60)
                ok = response.status_code == 200
                if not ok:
                    errors.append(f"{response.status_code} {response.text[:200]}")
            except Exception as exc:  # a load test counts failures rather than stopping
                ok = False
                errors.append(f"{type(exc).__name__}: {exc}")
            if ok:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    return np.array(latencies), errors, time.perf_counter() - start


async def run_config(args, model: Path, index: Path, n: int, batching: bool, port: int) -> list:
    import httpx

    limits = httpx.Limits(max_connections=max(args.clients) + 4, max_keepalive_connections=64)
    rows = []
    bodies = [{"context": c, "k": args.k} for c in contexts(512, seed=1)]
    server = Server(model, index, batching, port, args.threads)
    try:
        async with httpx.AsyncClient(limits=limits) as client:
            ready_s = await server.wait_ready(client, args.ready_timeout)
            # Warm-up: XLA compiles each new (batch, length) shape once (~0.5 s), so meet the
            # batch sizes micro-batching will form (padded to powers of two) before measuring.
            start = time.perf_counter()
            levels = sorted({1 << i for i in range(max(args.clients).bit_length())})
            for clients in levels:
                await drive(client, server.url, bodies, clients, 6 * clients + 10, args.warmup)
            warm_s = time.perf_counter() - start
            print(
                f"\nN={n:,} batching {'on' if batching else 'off'}: ready in {ready_s:.1f} s, "
                f"warm-up {warm_s:.1f} s",
                flush=True,
            )
            for clients in args.clients:
                before = await counters(client, server.url)
                lat, errors, wall = await drive(
                    client, server.url, bodies, clients, args.requests, args.seconds
                )
                after = await counters(client, server.url)
                delta = {key: after[key] - before[key] for key in after}
                mean_batch = delta["contexts"] / max(delta["calls"], 1)
                server_ms = 1000 * delta["server_s"] / max(delta["answered"], 1)
                ms = lat * 1e3
                p50 = float(np.percentile(ms, 50)) if len(ms) else float("nan")
                p99 = float(np.percentile(ms, 99)) if len(ms) else float("nan")
                rate = len(lat) / wall
                rows.append((n, batching, clients, len(lat), len(errors), p50, p99, rate))
                print(
                    f"  {clients:>2} clients: {len(lat)} ok, {len(errors)} errors in {wall:.1f} s; "
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {rate:.1f} requests/s; "
                    f"server: {delta['calls']:.0f} model calls, mean batch {mean_batch:.1f}, "
                    f"mean time in the server {server_ms:.1f} ms",
                    flush=True,
                )
                for e in errors[:3]:
                    print(f"     error: {e}")
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--batching", nargs="+", default=["on", "off"], choices=["on", "off"])
    parser.add_argument("--requests", type=int, default=600, help="most requests per phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="longest phase (s)")
    parser.add_argument("--warmup", type=float, default=4.0, help="longest warm-up per level (s)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--vocab", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--normalization", default="udc", help="udc, tokenize or none")
    parser.add_argument("--threads", type=int, default=2, help="server BLAS/OpenMP threads")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "chatbot-bench" / "service",
        help="model artifact and indexes (reused when present)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.normalization == "udc":
        try:
            from chatbot.text import Normalizer

            Normalizer("udc")
        except Exception as exc:  # no WordNet data here: still measure, say so
            print(f"udc normalisation unavailable ({exc}); using 'tokenize'")
            args.normalization = "tokenize"

    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    indexes = ensure_artifacts(args.workdir, args.sizes, args)
    print(f"artifacts ready in {time.perf_counter() - start:.0f} s ({args.workdir})")

    rows = []
    for n in args.sizes:
        for setting in args.batching:
            rows += asyncio.run(
                run_config(args, args.workdir / "model", indexes[n], n, setting == "on", args.port)
            )

    print("\nsummary (latency per request as the client saw it, HTTP included)")
    print(f"{'N':>9} {'batching':>8} {'clients':>7} {'ok':>5} {'err':>4} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'req/s':>7}")  # fmt: skip
    for n, batching, clients, ok, err, p50, p99, rate in rows:
        on = "on" if batching else "off"
        print(f"{n:>9,} {on:>8} {clients:>7} {ok:>5} {err:>4} {p50:>8.1f} {p99:>8.1f} {rate:>7.1f}")
    lo, hi = min(args.clients), max(args.clients)
    rates = {(n, b, c): rate for n, b, c, *_, rate in rows}
    for n in args.sizes:
        for setting in args.batching:
            b = setting == "on"
            if (n, b, lo) in rates and (n, b, hi) in rates:
                ratio = rates[(n, b, hi)] / rates[(n, b, lo)]
                verdict = "meets" if ratio >= 8 else "misses"
                print(
                    f"N={n:,} batching {setting}: {hi}-client / {lo}-client throughput "
                    f"{ratio:.2f}x (goal >= 8x: {verdict})"
                )
    for n, batching, clients, _, _, _, p99, _ in rows:
        if n == 1_000_000 and clients == 1:
            on = "on" if batching else "off"
            verdict = "meets" if p99 <= 60 else "misses"
            print(f"N=1M, 1 client, batching {on}: p99 {p99:.1f} ms (goal <= 60: {verdict})")


if __name__ == "__main__":
    main()
