from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from chatbot_cli import serve as cli
from service.worker_load import LOAD_DIR_ENV
from tests.helpers import tiny_artifact
from tests.live_server import call, wait_for, worker_pids


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chatbot")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_serve_runs_uvicorn_on_an_app_built_from_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))

    code = _run(
        [
            "serve",
            "--model",
            "m",
            "--index",
            "i",
            "--backend",
            "faiss-flat",
            "--port",
            "9001",
            "--no-batching",
            "--workers",
            "1",
        ]
    )

    assert code == 0
    [call] = calls
    assert (call["host"], call["port"]) == ("127.0.0.1", 9001)
    settings = call["app"].state.service.settings
    assert (settings.model_dir, settings.index_dir) == (Path("m"), Path("i"))
    assert (settings.backend, settings.batching) == ("faiss-flat", False)


def test_serve_without_a_model_says_which_option_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CHATBOT_MODEL_DIR", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("must not start"))

    assert _run(["serve", "--index", "i"]) == 2
    assert "error: say what to serve: a model repository" in capsys.readouterr().err


def test_several_workers_get_the_options_as_variables_and_a_metrics_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A copy: the variables serve sets for its workers must not leak into later tests.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.pop("OMP_NUM_THREADS", None)
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kw: Any) -> None:
        folder, loads = os.environ["PROMETHEUS_MULTIPROC_DIR"], os.environ[LOAD_DIR_ENV]
        seen.update(app=app, folder=folder, exists=Path(folder).is_dir(), **kw)
        seen.update(loads=loads, loads_exist=Path(loads).is_dir())
        seen["env"] = {k: v for k, v in os.environ.items() if k.startswith("CHATBOT_")}

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert _run(["serve", "--model", "m", "--index", "i", "--workers", "3", "--no-batching"]) == 0
    assert (seen["app"], seen["factory"], seen["workers"]) == ("service.app:create_app", True, 3)
    assert seen["exists"] and not Path(seen["folder"]).exists()  # removed after serving
    # The workers' requests in flight (service.worker_load): a folder of its own, removed too.
    assert seen["loads_exist"] and not Path(seen["loads"]).exists()
    assert LOAD_DIR_ENV not in environ
    assert seen["env"]["CHATBOT_MODEL_DIR"] == "m" and seen["env"]["CHATBOT_BATCHING"] == "false"
    # Six cores, three workers: two threads each.
    assert seen["env"]["CHATBOT_MODEL_THREADS"] == "2" and environ["OMP_NUM_THREADS"] == "2"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_workers_share_the_load_add_up_metrics_and_come_back_after_a_crash(tmp_path: Path) -> None:
    from chatbot.artifact import load_artifact
    from chatbot.index import save_index

    model = tiny_artifact(tmp_path / "model")
    artifact = load_artifact(model)
    texts = ["hello there", "fine thanks", "see you later"]
    vectors = artifact.encoder().encode_responses([f"{t} __eou__" for t in texts])
    save_index(tmp_path / "index", np.asarray(vectors), texts, artifact)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["serve", "--model", str(model), "--index", str(tmp_path / "index")]
    argv += ["--port", str(port), "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "chatbot_cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: len(worker_pids(server.pid)) == 2, 30, "two worker processes")
        # Each worker answers /readyz only once its own model is loaded and warm.
        wait_for(lambda: call(f"{url}/readyz")[0] == 200, 120, "a ready worker")
        for _ in range(6):
            status, body = call(f"{url}/respond", {"context": ["hi, how are you?"], "k": 2})
            assert status == 200 and len(json.loads(body)["responses"]) == 2
        metrics = call(f"{url}/metrics")[1]
        assert 'chatbot_requests_total{route="/respond",status="200"} 6.0' in metrics
        # The supervising process only watches its workers: none of the model's libraries
        # (each would cost every deployment their memory once more).
        assert _loaded_packages(server.pid) & HEAVY_PACKAGES == set()
        assert all("tensorflow" in _loaded_packages(pid) for pid in worker_pids(server.pid))

        victim = min(worker_pids(server.pid))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in worker_pids(server.pid), 30, "the killed worker to go")
        wait_for(lambda: len(worker_pids(server.pid)) == 2, 60, "a new worker")
        answered = 0
        for _ in range(20):  # the survivor answers at once, the new one once it is ready
            status, _ = call(f"{url}/respond", {"context": ["bye"], "k": 1})
            answered += status == 200
        assert answered == 20
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


HEAVY_PACKAGES = {"tensorflow", "keras", "sklearn", "scipy", "pandas", "matplotlib", "faiss"}


def _loaded_packages(pid: int) -> set[str]:
    """The site-packages folders whose files (shared libraries) process ``pid`` has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = (line.split()[-1] for line in maps if "site-packages/" in line)
    return {path.split("site-packages/", 1)[1].split("/", 1)[0] for path in paths}
