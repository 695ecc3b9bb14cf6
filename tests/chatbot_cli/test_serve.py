from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from chatbot_cli import serve as cli


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
    assert "error: --model / CHATBOT_MODEL_DIR: Field required" in capsys.readouterr().err
