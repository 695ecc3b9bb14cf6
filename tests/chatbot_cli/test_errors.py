"""Every command reports a problem the user can fix as one ``error:`` line and exit status 2."""

from __future__ import annotations

import json
import shutil
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


# argv templates: {model}, {damaged} (a model with an edited config.json), {data} (an
# evaluation CSV) and {tmp} (an empty folder) are filled in by the test.
CASES: dict[str, tuple[str, str]] = {
    "eval: missing data file": (
        "eval --model {model} --data {tmp}/MISSING.csv --json {tmp}/e.json",
        "MISSING.csv: No such file or directory",
    ),
    "eval: damaged config.json": (
        "eval --model {damaged} --data {data} --json {tmp}/e.json",
        "config.json is damaged or was replaced (checksum mismatch)",
    ),
    "index: damaged config.json": (
        "index --model {damaged} --responses {data} --out {tmp}/index",
        "config.json is damaged",
    ),
    "index: missing responses": (
        "index --model {model} --responses {tmp}/none.jsonl --out {tmp}/index",
        "none.jsonl: No such file or directory",
    ),
    "index: not an artifact": (
        "index --model {tmp} --responses {data} --out {tmp}/i",
        "not a model artifact (manifest.json is missing)",
    ),
    "train: missing training file": (
        "train --preset tiny --train {tmp}/train.csv --out {tmp}/m",
        "train.csv: No such file or directory",
    ),
    "train: an evaluation file as training file": (
        "train --preset tiny --train {data} --out {tmp}/m",
        "test.csv",
    ),
    "train: a setting out of range": (
        "train --preset tiny --train {data} --out {tmp}/m --hidden-size 0",
        "invalid ModelConfig values: {'hidden_size': 0}",
    ),
    "train: a negative response queue": (
        "train --preset tiny --train {data} --out {tmp}/m --negative-queue -1",
        "invalid TrainConfig values: {'negative_queue': -1}",
    ),
    "train: a negative lexical residual": (
        "train --preset tiny --train {data} --out {tmp}/m --lexical-residual -2",
        "invalid TrainConfig values: {'lexical_residual': -2.0}",
    ),
    "ubuntu-model: a setting out of range": (
        "ubuntu-model --shared-data {tmp} --out {tmp}/u --max-steps 0",
        "invalid TrainConfig values: {'max_steps': 0}",
    ),
    "ubuntu-model: no shared data": (
        "ubuntu-model --shared-data {tmp}/nowhere --out {tmp}/u",
        "nowhere: no shared data folder",
    ),
    "demo: output folder is a file": ("demo --build-only --out {data}", "test.csv"),
    "train: missing feedback file": (
        "train --preset tiny --train {data} --extra-train {tmp}/votes.csv --out {tmp}/m",
        "votes.csv: No such file or directory (--extra-train)",
    ),
    "calibrate: missing validation file": (
        "calibrate --model {model} --data {tmp}/valid.csv",
        "no such validation file",
    ),
    "calibrate: damaged config.json": (
        "calibrate --model {damaged} --data {data}",
        "config.json is damaged",
    ),
    "feedback export: no database": (
        "feedback export --database sqlite:///{tmp}/none.sqlite3 --out {tmp}/v.csv",
        "no database at",
    ),
    "feedback report: not a URL": ("feedback report --database nonsense", "is not a URL"),
    "data build: missing input": (
        "data build --source kaggle --input {tmp}/no.csv --out {tmp}/d",
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
    template, expected = CASES[case]
    paths = {"model": model, "damaged": damaged_model, "data": eval_csv, "tmp": tmp_path}
    assert main([part.format(**paths) for part in template.split()]) == 2
    assert expected in _one_error_line(capsys)


def test_serve_with_a_bad_setting_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATBOT_MAX_K", "500")
    assert main(["serve", "--model", "m", "--index", "i"]) == 2
    assert "CHATBOT_MAX_K" in _one_error_line(capsys)
