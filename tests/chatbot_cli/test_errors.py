"""Every command reports a problem the user can fix as one ``error:`` line and exit status 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from chatbot_cli import main
from tests.helpers import tiny_artifact
from training.sources.udc_csv import EVAL_HEADER, write_csv


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_artifact(tmp_path_factory.mktemp("cli") / "model")


@pytest.fixture
def damaged_model(model: Path, tmp_path: Path) -> Path:
    copy = shutil.copytree(model, tmp_path / "damaged")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "hidden_size": 9}))
    return copy


@pytest.fixture
def eval_csv(tmp_path: Path) -> Path:
    row = ["hi __eou__ __eot__", "hello __eou__", *(f"bye{i} __eou__" for i in range(9))]
    write_csv(tmp_path / "test.csv", EVAL_HEADER, [row], progress=False)
    return tmp_path / "test.csv"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err  # also holds log lines and progress bars
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


Case = Callable[[Path, Path, Path, Path], list[str]]
CASES: dict[str, tuple[Case, str]] = {
    "eval: missing data file": (
        lambda model, damaged, data, tmp: [
            *("eval", "--model", str(model), "--data", str(tmp / "MISSING.csv")),
            *("--json", str(tmp / "e.json")),
        ],
        "MISSING.csv: No such file or directory",
    ),
    "eval: damaged config.json": (
        lambda model, damaged, data, tmp: [
            *("eval", "--model", str(damaged), "--data", str(data), "--json", str(tmp / "e.json")),
        ],
        "config.json is damaged or was replaced (checksum mismatch)",
    ),
    "index: damaged config.json": (
        lambda model, damaged, data, tmp: [
            *("index", "--model", str(damaged), "--responses", str(data)),
            *("--out", str(tmp / "index")),
        ],
        "config.json is damaged",
    ),
    "index: missing responses": (
        lambda model, damaged, data, tmp: [
            *("index", "--model", str(model), "--responses", str(tmp / "none.jsonl")),
            *("--out", str(tmp / "index")),
        ],
        "none.jsonl: No such file or directory",
    ),
    "index: not an artifact": (
        lambda model, damaged, data, tmp: [
            *("index", "--model", str(tmp), "--responses", str(data), "--out", str(tmp / "i")),
        ],
        "not a model artifact (manifest.json is missing)",
    ),
    "train: missing training file": (
        lambda model, damaged, data, tmp: [
            *("train", "--preset", "tiny", "--train", str(tmp / "train.csv")),
            *("--out", str(tmp / "m")),
        ],
        "train.csv: No such file or directory",
    ),
    "train: an evaluation file as training file": (
        lambda model, damaged, data, tmp: [
            *("train", "--preset", "tiny", "--train", str(data), "--out", str(tmp / "m")),
        ],
        "test.csv",
    ),
    "ubuntu-model: no shared data": (
        lambda model, damaged, data, tmp: [
            *("ubuntu-model", "--shared-data", str(tmp / "nowhere"), "--out", str(tmp / "u")),
        ],
        "nowhere: no shared data folder",
    ),
    "demo: output folder is a file": (
        lambda model, damaged, data, tmp: ["demo", "--build-only", "--out", str(data)],
        "test.csv",
    ),
    "data build: missing input": (
        lambda model, damaged, data, tmp: [
            *("data", "build", "--source", "kaggle", "--input", str(tmp / "no.csv")),
            *("--out", str(tmp / "d")),
        ],
        "input not found",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_problem_is_one_error_line_and_exit_2(
    case: str,
    model: Path,
    damaged_model: Path,
    eval_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_argv, expected = CASES[case]
    assert main(make_argv(model, damaged_model, eval_csv, tmp_path)) == 2
    assert expected in _one_error_line(capsys)


def test_serve_with_a_bad_setting_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATBOT_MAX_K", "500")
    assert main(["serve", "--model", "m", "--index", "i"]) == 2
    assert "CHATBOT_MAX_K" in _one_error_line(capsys)
