"""The HTTP service under load: latency and throughput with and without micro-batching.

Builds (once; reused from ``--workdir``) a model artifact with ``build_dual_encoder`` and
``save_artifact`` (LSTM 256, embedding 100, vocabulary 20k, untrained weights: latency does
not depend on them) and, for each repository size (100k and 1M by default), a generated index
(random normalised vectors, texts "response <i>") with ``save_index``.

For each size:

1. The ranking step alone (``--ranking``, on by default): the service's ``exact`` search
   backend and faiss ``IndexFlatIP`` on the same index vectors, query batches of 1 and 32,
   calls alternated so that both see the same machine load.
2. Services at once, micro-batching on and off (``CHATBOT_BATCHING``; ``--batching on:0``
   adds one with a 0 ms batch window, ``CHATBOT_BATCH_WINDOW_MS``), each
   ``python -m uvicorn --factory service.app:create_app`` on 127.0.0.1 (the service compiles
   every XLA shape before ``/readyz`` says ready). The phases (1 and 32 concurrent clients x
   on/off) are interleaved for ``--rounds`` rounds, so that A and B share the machine's noise;
   each cell reports its median round.

The load generator is ``wrk`` (a C client, one thread, ``-c`` connections, a Lua script that
cycles through 512 prepared POST bodies) when it is installed, else an async httpx client in
this process (``--client httpx`` forces it; it costs far more CPU per request). Each phase
lasts ``--seconds``. Per phase it reads from the server's ``/metrics`` the model calls, mean
batch size and model time per call, and from ``/proc`` and ``getrusage`` the CPU time the
server and the client spent per request.

CPU placement: by default neither process is pinned (the server's TensorFlow and BLAS threads
need both cores for a 1M product; wrk needs a few percent of one). ``--server-cpus`` and
``--client-cpus`` (``taskset -c`` lists) pin them for comparison.

Prints p50/p99 latency and requests/s per configuration, the ratio of 32-client to 1-client
throughput (goal >= 8x with micro-batching), and the 1M one-client p99 (goal <= 60 ms).

Run: ``.venv/bin/python bench/service_load.py`` (``--sizes 20000 --seconds 5`` to shrink).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Before numpy/faiss load: idle OpenMP threads sleep instead of spinning on the shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


WRK_SCRIPT = """
-- POST /respond with bodies read (one JSON object a line) from the file given after "--".
local requests, n = {}, 0
function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", "/respond", headers, line)
  end
end
function request()
  n = n % #requests + 1
  return requests[n]
end
function done(summary, latency, _)
  local e = summary.errors
  local out = assert(io.open(os.getenv("WRK_OUT"), "w"))
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
  out:close()
end
"""


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def taskset(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus else []


class Server:
    """``uvicorn --factory service.app:create_app`` in a subprocess, on 127.0.0.1."""

    def __init__(self, model: Path, index: Path, variant: str, port: int, args):
        threads = str(args.threads)
        batching, _, window_ms = variant.partition(":")
        window_ms = window_ms or (None if args.window_ms is None else str(args.window_ms))
        env = {
            **os.environ,
            "CHATBOT_MODEL_DIR": str(model),
            "CHATBOT_INDEX_DIR": str(index),
            "CHATBOT_BATCHING": "true" if batching == "on" else "false",
            "CHATBOT_BACKEND": "exact",
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OMP_WAIT_POLICY": "PASSIVE",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        if window_ms is not None:
            env["CHATBOT_BATCH_WINDOW_MS"] = window_ms
        if args.max_batch is not None:
            env["CHATBOT_MAX_BATCH_SIZE"] = str(args.max_batch)
        command = [
            *taskset(args.server_cpus), sys.executable, "-m", "uvicorn",
            "service.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.variant = variant
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from start to ready: loading, plus the service's own XLA warm-up."""
        while time.perf_counter() - self.started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                code, text = get(f"{self.url}/readyz", timeout=2)
                if code == 200:
                    return time.perf_counter() - self.started
                detail = json.loads(text).get("detail", "")
                if detail and detail != "model is loading":
                    raise RuntimeError(f"server not ready: {detail}\n{self.log_tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"server not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def counters(self) -> dict[str, float]:
        """Model calls, contexts, model and /respond seconds so far, and the server's CPU."""
        text = get(f"{self.url}/metrics")[1]
        wanted = {
            "chatbot_batch_size_count": "calls",
            "chatbot_batch_size_sum": "contexts",
            "chatbot_model_seconds_sum": "model_s",
            'chatbot_request_seconds_sum{route="/respond"}': "server_s",
            'chatbot_request_seconds_count{route="/respond"}': "answered",
        }
        out = dict.fromkeys(wanted.values(), 0.0)
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name in wanted:
                out[wanted[name]] = float(value)
        out["cpu_s"] = process_cpu_s(self.process.pid)
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Phase:
    """What one load phase measured; ``client_cpu_s`` is the load generator's CPU time."""

    ok: int
    errors: list[str]
    wall_s: float
    p50_ms: float
    p99_ms: float
    client_cpu_s: float


def drive_wrk(url: str, bodies_file: Path, script: Path, clients: int, seconds: float, cpus):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            *taskset(cpus), "wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s",
            "-s", str(script), url, "--", str(bodies_file),
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "WRK_OUT": out.name}
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
        result = json.loads(Path(out.name).read_text())
    errors = [f"{what}: {n}" for what, n in result["errors"].items() if n]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Phase(
        ok=result["requests"] - result["errors"]["status"],
        errors=errors,
        wall_s=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1e3,
        p99_ms=result["p99_us"] / 1e3,
        client_cpu_s=cpu,
    )


def drive_httpx(url: str, bodies: list[dict], clients: int, seconds: float) -> Phase:
    """``clients`` concurrent request loops of an async httpx client, in this process."""
    import httpx

    async def run() -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        errors: list[str] = []
        sent = 0
        limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients)
        async with httpx.AsyncClient(limits=limits) as client:
            deadline = time.perf_counter() + seconds

            async def loop() -> None:
                nonlocal sent
                while time.perf_counter() < deadline:
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
            return latencies, errors, time.perf_counter() - start

    before = time.process_time()
    latencies, errors, wall = asyncio.run(run())
    ms = np.array(latencies) * 1e3
    p50, p99 = np.percentile(ms, [50, 99]) if len(ms) else (float("nan"),) * 2
    return Phase(len(ms), errors, wall, float(p50), float(p99), time.process_time() - before)


def bench_ranking(index_dir: Path, model_dir: Path, args) -> list[tuple]:
    """The service's ``exact`` backend vs faiss IndexFlatIP on the index's vectors."""
    import faiss

    from chatbot.artifact import load_artifact
    from chatbot.index import load_index
    from chatbot.search import make_backend

    faiss.omp_set_num_threads(args.threads)
    vectors = np.ascontiguousarray(load_index(index_dir, load_artifact(model_dir)).vectors)
    vectors = vectors.astype(np.float32, copy=False)
    exact = make_backend("exact", vectors)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    faiss.cvar.distance_compute_blas_threshold = 1024  # as chatbot/search.py (docs/performance.md)
    engines = {
        f"exact ({getattr(exact, 'precision', '?')})": lambda q: exact.search(q, args.k),
        "faiss IndexFlatIP": lambda q: flat.search(q, args.k),
    }
    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 32):
        queries = rng.standard_normal((batch, vectors.shape[1]), dtype=np.float32)
        times: dict[str, list[float]] = {name: [] for name in engines}
        for fn in engines.values():  # first call of each shape compiles: not timed
            fn(queries)
        deadline = time.perf_counter() + args.ranking_seconds
        while time.perf_counter() < deadline or min(map(len, times.values())) < 5:
            for name, fn in engines.items():
                start = time.perf_counter()
                fn(queries)
                times[name].append(time.perf_counter() - start)
        for name, t in times.items():
            ms = np.array(t) * 1e3
            p50, p99 = np.percentile(ms, [50, 99])
            rows.append((len(vectors), name, batch, len(ms), p50, p99, p50 / batch))
    return rows


def run_size(args, model: Path, index: Path, n: int) -> list[tuple]:
    bodies = [{"context": c, "k": args.k} for c in contexts(512, seed=1)]
    bodies_file = args.workdir / "bodies.jsonl"
    bodies_file.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    script = args.workdir / "respond.lua"
    script.write_text(WRK_SCRIPT)
    servers = {v: Server(model, index, v, args.port + i, args) for i, v in enumerate(args.batching)}
    phases: dict[tuple[str, int], list[tuple[Phase, dict]]] = {}
    try:
        for b, server in servers.items():
            ready = server.wait_ready(args.ready_timeout)
            print(
                f"N={n:,} batching {b}: ready (load + XLA warm-up) in {ready:.1f} s",
                flush=True,
            )

        def phase(server: Server, clients: int, seconds: float) -> Phase:
            if args.client == "wrk":
                return drive_wrk(
                    server.url, bodies_file, script, clients, seconds, args.client_cpus
                )
            return drive_httpx(server.url, bodies, clients, seconds)

        for server in servers.values():  # connections, caches: not measured
            for clients in args.clients:
                phase(server, clients, args.warmup)
        for r in range(args.rounds):
            for clients in args.clients:
                for b, server in servers.items():
                    before = server.counters()
                    result = phase(server, clients, args.seconds)
                    after = server.counters()
                    delta = {key: after[key] - before[key] for key in after}
                    phases.setdefault((b, clients), []).append((result, delta))
                    report(n, b, clients, r, result, delta)
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for (b, clients), runs in phases.items():
        runs.sort(key=lambda run: run[0].ok / run[0].wall_s)
        result, _ = runs[len(runs) // 2]  # the median round by throughput
        rate = result.ok / result.wall_s
        rows.append(
            (n, b, clients, result.ok, len(result.errors), result.p50_ms, result.p99_ms, rate)
        )
    return rows


def report(n: int, batching: str, clients: int, r: int, result: Phase, delta: dict) -> None:
    done = max(delta["answered"], 1)
    calls = max(delta["calls"], 1)
    print(
        f"  round {r} batching {batching:<4} {clients:>2} clients: "
        f"{result.ok} ok in {result.wall_s:.1f} s = {result.ok / result.wall_s:.1f} req/s; "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms | server: "
        f"{delta['calls']:.0f} model calls, mean batch {delta['contexts'] / calls:.1f}, "
        f"{1000 * delta['model_s'] / calls:.1f} ms per model call "
        f"({100 * delta['model_s'] / result.wall_s:.0f}% of the wall time), "
        f"{1000 * delta['server_s'] / done:.1f} ms in the server per request, "
        f"CPU {1000 * delta['cpu_s'] / done:.1f} ms per request "
        f"({100 * delta['cpu_s'] / result.wall_s:.0f}% of one core) | client CPU "
        f"{1000 * result.client_cpu_s / done:.2f} ms per request "
        f"({100 * result.client_cpu_s / result.wall_s:.0f}% of one core)",
        flush=True,
    )
    for e in result.errors[:3]:
        print(f"     errors: {e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument(
        "--batching",
        nargs="+",
        default=["on", "off"],
        help="variants run side by side: on, off, or on:W (a batch window of W ms)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="one load phase (s)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured load per cell (s)")
    parser.add_argument("--client", choices=["wrk", "httpx"], default=None, help="default: wrk")
    parser.add_argument("--server-cpus", default=None, help="taskset -c list for the server")
    parser.add_argument("--client-cpus", default=None, help="taskset -c list for wrk")
    parser.add_argument("--window-ms", type=float, default=None, help="CHATBOT_BATCH_WINDOW_MS")
    parser.add_argument("--max-batch", type=int, default=None, help="CHATBOT_MAX_BATCH_SIZE")
    parser.add_argument(
        "--ranking", action=argparse.BooleanOptionalAction, default=True,
        help="time the ranking step alone (exact vs faiss IndexFlatIP)",
    )  # fmt: skip
    parser.add_argument("--ranking-seconds", type=float, default=3.0)
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

    if args.client is None:
        args.client = "wrk" if shutil.which("wrk") else "httpx"
        if args.client == "httpx":
            print("wrk not found (apt-get install wrk): using the httpx client, which is slower")
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    if args.client == "httpx" and args.client_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    print(
        f"client {args.client}; server CPUs {args.server_cpus or 'all'}, "
        f"client CPUs {args.client_cpus or 'all'}",
        flush=True,
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    indexes = ensure_artifacts(args.workdir, args.sizes, args)
    print(f"artifacts ready in {time.perf_counter() - start:.0f} s ({args.workdir})")

    rows, ranking = [], []
    for n in args.sizes:
        if args.ranking:
            ranking += bench_ranking(indexes[n], args.workdir / "model", args)
        rows += run_size(args, args.workdir / "model", indexes[n], n)

    if ranking:
        print("\nthe ranking step alone (same vectors, calls alternated)")
        print(f"{'N':>9} {'engine':>22} {'batch':>5} {'calls':>5} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'ms/query':>8}")  # fmt: skip
        for n, name, batch, calls, p50, p99, per_query in ranking:
            print(f"{n:>9,} {name:>22} {batch:>5} {calls:>5} {p50:>8.1f} {p99:>8.1f} "
                  f"{per_query:>8.2f}")  # fmt: skip

    print(
        f"\nsummary ({args.client}; latency per request as the client saw it, HTTP included; "
        f"median of {args.rounds} rounds)"
    )
    print(f"{'N':>9} {'batching':>8} {'clients':>7} {'ok':>5} {'err':>4} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'req/s':>7}")  # fmt: skip
    for n, on, clients, ok, err, p50, p99, rate in rows:
        print(f"{n:>9,} {on:>8} {clients:>7} {ok:>5} {err:>4} {p50:>8.1f} {p99:>8.1f} {rate:>7.1f}")
    lo, hi = min(args.clients), max(args.clients)
    rates = {(n, b, c): rate for n, b, c, *_, rate in rows}
    for n in args.sizes:
        for setting in args.batching:
            b = setting
            if (n, b, lo) in rates and (n, b, hi) in rates:
                ratio = rates[(n, b, hi)] / rates[(n, b, lo)]
                verdict = "meets" if ratio >= 8 else "misses"
                print(
                    f"N={n:,} batching {setting}: {hi}-client / {lo}-client throughput "
                    f"{ratio:.2f}x (goal >= 8x: {verdict})"
                )
    for n, on, clients, _, _, _, p99, _ in rows:
        if n == 1_000_000 and clients == 1:
            verdict = "meets" if p99 <= 60 else "misses"
            print(f"N=1M, 1 client, batching {on}: p99 {p99:.1f} ms (goal <= 60: {verdict})")


if __name__ == "__main__":
    main()
