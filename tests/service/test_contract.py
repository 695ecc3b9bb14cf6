"""The API contract: schemathesis drives the running service from its /openapi.json with
every check (status codes and bodies as documented, valid input accepted, invalid input
rejected, no 5xx), the admin endpoints included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot import bundles
from tests.helpers import tiny_bundle
from tests.live_server import call, serving, wait_for

TOKEN = "contract-token"


@pytest.mark.slow
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    model, index = tiny_bundle(tmp_path / "bundle")
    repo = tmp_path / "repo"
    bundles.publish(repo, model, index)
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis is not None, "schemathesis is a dev dependency: make install"
    env = {"CHATBOT_ADMIN_TOKEN": TOKEN, "CHATBOT_POLL_S": "0", "CHATBOT_MAX_BATCH_SIZE": "4"}
    argv = ["--repository", str(repo), "--workers", "1"]
    # A made-up request_id is valid by the schema and unknown to the service (404), and a
    # response must be one of the replies that request was shown (422).
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        '[[operations]]\ninclude-path = "/feedback"\n'
        'checks.positive_data_acceptance.expected-statuses = ["200", "201", "404", "422"]\n'
    )
    with serving(argv, env, log=tmp_path / "serve.log") as (_, url):
        wait_for(lambda: call(f"{url}/readyz")[0] == 200, 120, "the service")
        run = subprocess.run(
            [
                schemathesis,
                "--config-file",
                str(config),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "-H",
                f"Authorization: Bearer {TOKEN}",
            ],
            capture_output=True,
            text=True,
            timeout=500,
            cwd=tmp_path,  # its report folder goes there
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "No issues found" in report
    # The edits it sent were published as versions, each complete.
    for version in bundles.versions(repo):
        bundles.check_bundle(repo / version / "model", repo / version / "index")
