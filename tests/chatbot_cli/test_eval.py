"""``chatbot eval`` on generated files, baselines only and with a stub model."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from chatbot.calibration import UNCALIBRATED
from chatbot.scoring import Scorer
from chatbot_cli import eval as cli_eval
from chatbot_cli import main
from training.sources.udc_csv import EVAL_HEADER as HEADER


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_eval.register(parser.add_subparsers())
    return parser.parse_args(["eval", *argv])


@pytest.fixture
def eval_csv(tmp_path: Path) -> Path:
    # Only the true response shares the context's topic word, so TF-IDF ranks it first.
    path = tmp_path / "test.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(20):
            others = [(i + j) % 20 for j in range(1, 10)]
            writer.writerow(
                [f"topic{i} question __eou__ __eot__", f"topic{i} answer __eou__"]
                + [f"topic{j} answer __eou__" for j in others]
            )
    return path


def test_baselines_only(eval_csv: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    argv = ["--data", str(eval_csv), "--baselines", "tfidf,random", "--json", str(out)]
    args = parse([*argv, "--plot", str(png), "--max-rows", "15"])
    assert args.func(args) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n"] == 15
    assert list(report["results"]) == ["tfidf", "random"]
    assert report["results"]["tfidf"]["recall@1"] == 1.0
    assert png.exists()


def test_model_is_loaded_lazily(
    eval_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class TopicEncoder:
        """Context i and response i share the one-hot vector of topic i."""

        bias = 0.0

        def _vectors(self, texts: list[str]) -> np.ndarray:
            ids = [int(t.split()[0].removeprefix("topic")) for t in texts]
            return np.eye(20, dtype=np.float32)[ids]

        encode_contexts = encode_responses = _vectors

    loaded: list[Path] = []
    artifact = types.ModuleType("chatbot.artifact")
    model = types.SimpleNamespace(scorer=lambda: Scorer(TopicEncoder()), calibration=UNCALIBRATED)
    artifact.load_artifact = lambda path: loaded.append(path) or model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chatbot.artifact", artifact)
    out = tmp_path / "eval.json"
    args = parse(["--model", "m1", "--data", str(eval_csv), "--json", str(out)])
    assert args.func(args) == 0
    assert loaded == [Path("m1")]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["results"]["model"]["mrr"] == 1.0
    # No fitted curves: the confidence is σ(score), measured and said so.
    assert report["calibration"]["1 in 10"]["fitted"] is False


def test_nothing_to_evaluate(
    eval_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--data", str(eval_csv), "--json", str(tmp_path / "eval.json")]) == 2
    assert capsys.readouterr().err == (
        "error: nothing to evaluate: give --model and/or --baselines\n"
    )


def test_unknown_baseline_is_a_usage_error(eval_csv: Path) -> None:
    with pytest.raises(SystemExit):
        parse(["--data", str(eval_csv), "--baselines", "bm25", "--json", "x.json"])


def test_bad_rows_fail_or_are_skipped(eval_csv: Path, tmp_path: Path) -> None:
    with open(eval_csv, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["too", "short"])
    from training.errors import DataError

    out = tmp_path / "eval.json"
    argv = ["--data", str(eval_csv), "--baselines", "random", "--json", str(out)]
    args = parse(argv)
    with pytest.raises(DataError, match=r"test\.csv:22: expected 11 columns"):
        args.func(args)
    args = parse([*argv, "--skip-bad-rows"])
    assert args.func(args) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["n"] == 20
