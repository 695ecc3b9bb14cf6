"""``chatbot data build`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot_cli import main

HEADER = "dialogueID,date,from,to,text\n"


def run(*argv: str) -> int:
    return main(["data", "build", *argv])


def write_csv(path: Path, n: int = 30, bad_rows: str = "") -> Path:
    rows = [
        f"{i}.tsv,2010-01-{1 + i % 28:02d}T10:00:00.000Z,{speaker},,message {t} of {i}\n"
        for i in range(n)
        for t, speaker in enumerate(("ann", "bob", "ann", "bob"))
    ]
    path.write_text(HEADER + bad_rows + "".join(rows))
    return path


def test_builds_from_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_csv(tmp_path / "d.csv")
    out = tmp_path / "out"
    code = run("--source", "kaggle", "--input", str(source), "--out", str(out))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "test.csv",
        "test.raw.jsonl",
        "train.csv",
        "valid.csv",
        "valid.raw.jsonl",
    ]
    assert "training pairs: 26" in capsys.readouterr().out


def test_options_reach_the_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_csv(tmp_path / "d.csv", bad_rows="x.tsv,never,ann,,hi\n")
    argv = ["--source", "kaggle", "--input", str(source), "--out", str(tmp_path / "o")]
    options = ["--normalization", "none", "--examples", "7", "--positives-only"]
    dates = ["--valid-from", "2010-01-20", "--test-from", "2010-01-25", "--max-dialogues", "20"]
    assert run(*argv, *options, *dates, "--skip-bad-rows") == 0
    printed = capsys.readouterr().out
    assert "train 19, valid 1, test 0" in printed and "skipped bad rows: 1" in printed
    assert "training pairs: 7" in printed


def test_missing_input_or_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    assert run("--source", "udc-raw", "--out", out) == 2
    assert capsys.readouterr().err == "error: --source udc-raw needs --input PATH\n"
    assert run("--source", "kaggle", "--input", str(tmp_path / "none.csv"), "--out", out) == 2
    assert "error: input not found: " in capsys.readouterr().err
    source = str(write_csv(tmp_path / "d.csv"))
    assert (
        run("--source", "kaggle", "--input", source, "--out", out, "--valid-from", "2010-01-02")
        == 2
    )
    assert capsys.readouterr().err == "error: give both valid_from and test_from, or neither\n"


def test_help_lists_sources(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("--help")
    sources = "{chitchat,irc,irc-extra,kaggle,liuzqt,pimlico,udc-raw}"
    assert f"--source {sources}" in capsys.readouterr().out
