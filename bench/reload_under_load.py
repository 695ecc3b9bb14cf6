"""New versions swapped in under load: does any request fail, and how much slower do they get?

Publishes the first ``--bundle`` into a fresh model repository, starts the real
``chatbot serve --repository`` (``--workers`` processes, polling every ``--poll-s`` seconds,
an admin token), and drives it with ``--clients`` concurrent clients (async httpx, real
contexts, raw text) for ``--seconds``. Meanwhile it publishes ``--swaps`` new versions at even
intervals over the first 60 % of the run (12, 24 and 36 s of 60), alternating the bundles
given: odd swaps are found by polling, even ones are asked for with ``POST /admin/reload``.

A swap's window runs from the start of its publication until the last request that started
after it was answered by an older version, plus one second (the old bundle being released).
Requests that start inside a window count as "during the swaps", the others as "steady".

Goals (issue 11): zero failed or non-2xx requests; p99 during the swaps <= 2x the steady p99;
the served version changes ``--swaps`` times. It prints those figures with their verdicts,
and with ``--plot`` a latency timeline with the windows shaded.

Run: ``.venv/bin/python bench/reload_under_load.py``. Default bundles: ``artifacts/default``
(``make run``) and, when built, ``artifacts/default-b``: the same network trained again, as a
team publishes a retrained model::

    chatbot train --train artifacts/default/data/train.csv \\
        --valid artifacts/default/data/valid.csv --out artifacts/default-b/model \\
        --preset chitchat --seed 1 --max-steps 300 --name chitchat-b
    chatbot index --model artifacts/default-b/model \\
        --responses artifacts/default/data/train.csv --out artifacts/default-b/index

A bundle of another network (``--bundle artifacts/ubuntu/model artifacts/ubuntu/index``) is
compiled when it first arrives, which on two cores under this load takes longer than the
15 s between publications (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from chatbot import bundles

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
CONTEXTS = (
    "my wifi stopped working after the upgrade",
    "how do I install a package from a .deb file?",
    "hi, how are you today?",
    "what are you doing this weekend?",
    "the screen stays black after login",
    "which video card do I have?",
    "thanks, that worked!",
    "can you recommend a good movie?",
)


@dataclass
class Record:
    start: float
    seconds: float
    status: int
    version: str


@dataclass
class Swap:
    version: str
    how: str  # "poll" or "reload"
    published_at: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)


@dataclass
class Outcome:
    records: list[Record] = field(default_factory=list)
    swaps: list[Swap] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _post(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=120) as r:
        return json.loads(r.read())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _wait_for_spares(url: str, workers: int, deadline: float) -> None:
    """Until enough /admin/status answers in a row (any worker may answer) report a spare."""
    in_a_row = 0
    while in_a_row < 4 * workers:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not make their spare models in time")
        request = urllib.request.Request(
            f"{url}/admin/status", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            spares = json.loads(r.read())["spares"]
        in_a_row = in_a_row + 1 if spares else 0
        time.sleep(0.2 if spares else 1.0)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drive(url: str, clients: int, seconds: float, outcome: Outcome, t0: float) -> None:
    import httpx

    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def loop(i: int) -> None:
            n = i
            while time.perf_counter() < stop_at:
                body = {"context": [CONTEXTS[n % len(CONTEXTS)]], "k": 3}
                n += clients
                start = time.perf_counter()
                try:
                    reply = await client.post("/respond", json=body)
                    version = reply.json().get("model", "") if reply.status_code == 200 else ""
                    status = reply.status_code
                except (httpx.HTTPError, ValueError) as exc:
                    status, version = 0, ""
                    outcome.errors.append(f"{type(exc).__name__}: {exc}")
                took = time.perf_counter() - start
                outcome.records.append(Record(start - t0, took, status, version))

        await asyncio.gather(*(loop(i) for i in range(clients)))


def _publisher(
    repo: Path, url: str, plan: list[tuple[float, tuple[Path, Path], Swap]], t0: float
) -> None:
    for at, (model, index), swap in plan:
        time.sleep(max(0.0, at - (time.perf_counter() - t0)))
        swap.published_at = time.perf_counter() - t0
        swap.version = bundles.publish(repo, model, index, note="bench").version
        if swap.how == "reload":  # answered once loaded: do not hold up the next publication
            threading.Thread(target=_post, args=(f"{url}/admin/reload", None, TOKEN)).start()


def _windows(outcome: Outcome) -> None:
    for swap in outcome.swaps:
        after = [r for r in outcome.records if r.start >= swap.published_at]
        old = [r.start + r.seconds for r in after if r.status == 200 and r.version < swap.version]
        end = max(old, default=swap.published_at) + 1.0
        swap.window = (swap.published_at, end)


def run(args: argparse.Namespace) -> dict:
    given = [(Path(m), Path(i)) for m, i in args.bundle]
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
        repo = Path(tmp) / "repo"
        print(f"publishing {given[0][0]} as the first version ...", flush=True)
        bundles.publish(repo, *given[0])
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
        env |= {
            "CHATBOT_ADMIN_TOKEN": TOKEN,
            "CHATBOT_POLL_S": str(args.poll_s),
            "CHATBOT_REQUEST_TIMEOUT_S": "30",
        }
        argv = ["serve", "--repository", str(repo), "--port", str(port)]
        argv += ["--workers", str(args.workers)]
        log = open(Path(tmp) / "serve.log", "w")  # noqa: SIM115 (closed in finally)
        server = subprocess.Popen(
            [sys.executable, "-m", "chatbot_cli", *argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not _ready(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the service did not start:\n{_tail(Path(tmp))}")
                time.sleep(0.5)
            # Every worker ready with its spare encoder compiled (what a running service has).
            _wait_for_spares(url, args.workers, deadline=time.monotonic() + 600)
            # A few seconds of unmeasured load.
            asyncio.run(_drive(url, args.clients, args.warmup, Outcome(), time.perf_counter()))
            outcome = Outcome()
            # Over the first 60 % of the run: a load takes 10-16 s under this load on two
            # cores (docs/operations.md), and the last one must finish while clients run.
            spacing = args.seconds * 0.6 / args.swaps
            plan = []
            for i in range(args.swaps):
                bundle = given[(i + 1) % len(given)]
                swap = Swap("", "poll" if i % 2 == 0 else "reload")
                outcome.swaps.append(swap)
                plan.append((spacing * (i + 1), bundle, swap))
            print(
                f"{args.clients} clients for {args.seconds:.0f} s; {args.swaps} versions "
                f"published at {', '.join(f'{at:.0f} s' for at, _, _ in plan)} ...",
                flush=True,
            )
            t0 = time.perf_counter()
            publisher = threading.Thread(target=_publisher, args=(repo, url, plan, t0))
            publisher.start()
            asyncio.run(_drive(url, args.clients, args.seconds, outcome, t0))
            publisher.join()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
            log.close()
            if args.log:
                Path(args.log).write_text((Path(tmp) / "serve.log").read_text())
        _windows(outcome)
        return _report(outcome, args, Path(tmp))


def _tail(folder: Path) -> str:
    return (folder / "serve.log").read_text()[-3000:]


def _report(outcome: Outcome, args: argparse.Namespace, folder: Path) -> dict:
    records = outcome.records
    failed = [r for r in records if r.status != 200]
    inside = np.zeros(len(records), dtype=bool)
    starts = np.array([r.start for r in records])
    for swap in outcome.swaps:
        inside |= (starts >= swap.window[0]) & (starts < swap.window[1])
    latencies = np.array([r.seconds for r in records]) * 1000
    steady = latencies[~inside]
    during = latencies[inside]
    p99_steady = float(np.percentile(steady, 99)) if len(steady) else float("nan")
    p99_during = float(np.percentile(during, 99)) if len(during) else float("nan")
    served = {r.version for r in records if r.status == 200}
    changes = len(served) - 1  # every publication is a new version number
    result = {
        "requests": len(records),
        "throughput_rps": len(records) / args.seconds,
        "failed": len(failed),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_steady_ms": p99_steady,
        "p99_during_swaps_ms": p99_during,
        "p99_ratio": p99_during / p99_steady,
        "requests_during_swaps": int(inside.sum()),
        "version_changes": changes,
        "versions": sorted(served),
        "swaps": [
            {
                "version": s.version,
                "how": s.how,
                "published_at_s": round(s.published_at, 2),
                "window_s": round(s.window[1] - s.window[0], 2),
            }
            for s in outcome.swaps
        ],
    }
    print()
    print(
        f"requests {result['requests']:,} ({result['throughput_rps']:.0f}/s), "
        f"failed or non-2xx: {result['failed']}"
    )
    for s in result["swaps"]:
        print(
            f"  {s['version']} by {s['how']:6s} published at {s['published_at_s']:5.1f} s, "
            f"window {s['window_s']:.1f} s"
        )
    print(
        f"p50 {result['p50_ms']:.0f} ms; p99 steady {p99_steady:.0f} ms, during swaps "
        f"{p99_during:.0f} ms ({result['requests_during_swaps']:,} requests): "
        f"{result['p99_ratio']:.2f}x"
    )
    print()
    print(f"goal: zero failed requests             {_verdict(result['failed'] == 0)}")
    print(f"goal: p99 during swaps <= 2x steady    {_verdict(result['p99_ratio'] <= 2.0)}")
    print(
        f"goal: version changed {args.swaps} times          "
        f"{_verdict(changes == args.swaps)} ({changes})"
    )
    if failed:
        print("first failures:", outcome.errors[:3] or [f.status for f in failed[:5]])
        print(_tail(folder))
    if args.plot:
        _plot(outcome, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _plot(outcome: Outcome, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    starts = [r.start for r in outcome.records]
    ax.scatter(starts, [r.seconds * 1000 for r in outcome.records], s=2, alpha=0.4)
    for swap in outcome.swaps:
        ax.axvspan(*swap.window, color="orange", alpha=0.2)
        ax.text(swap.window[0], ax.get_ylim()[1] * 0.9, f" {swap.version} ({swap.how})", fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency (ms)")
    ax.set_title("/respond under load while new versions are swapped in (shaded)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--bundle",
        nargs=2,
        action="append",
        metavar=("MODEL", "INDEX"),
        help="a model and its index (give two; default: artifacts/default and default-b)",
    )
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--swaps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--poll-s", type=float, default=2.0)
    p.add_argument("--plot", help="write the latency timeline here (PNG)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--log", help="keep the server's log here")
    args = p.parse_args(argv)
    if not args.bundle:
        args.bundle = [
            (str(ROOT / f"artifacts/{name}/model"), str(ROOT / f"artifacts/{name}/index"))
            for name in ("default", "default-b")
            if (ROOT / f"artifacts/{name}/index/manifest.json").is_file()
        ]
        if not args.bundle:
            p.error("no bundle given and artifacts/default is not built (run `make run` once)")
    return args


def main(argv: list[str] | None = None) -> dict:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
