"""Building UDC v2 layout files from dialogues: layouts, sampling, time split, determinism."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from training.build import (
    EVAL_HEADER,
    TRAIN_HEADER,
    BuildOptions,
    SplitOptions,
    build_dataset,
    split_dialogues,
)
from training.dialogue import Dialogue

START = dt.date(2010, 1, 1)


def dialogue(i: int, n_turns: int = 6, date: dt.date | None = START) -> Dialogue:
    """Every word names its dialogue (``d7``), so a text's origin can be told after the build."""
    day = date + dt.timedelta(days=i) if date else None
    turns = tuple((f"d{i} turn {t}", f"d{i} more") for t in range(n_turns))
    return Dialogue(f"id{i:03d}", day, turns)


def origin(text: str) -> set[str]:
    return set(re.findall(r"d\d+", text))


def read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def build(tmp_path: Path, n: int = 40, **options: object) -> Path:
    build_dataset([dialogue(i) for i in range(n)], tmp_path, BuildOptions("none", **options))  # type: ignore[arg-type]
    return tmp_path


def test_train_layout_and_labels(tmp_path: Path) -> None:
    rows = read(build(tmp_path, examples=400) / "train.csv")
    assert tuple(rows[0]) == TRAIN_HEADER and len(rows) == 401
    assert 0.4 < sum(r[2] == "1" for r in rows[1:]) / 400 < 0.6
    for context, response, label in rows[1:]:
        assert context.endswith("__eou__ __eot__") and response.endswith("__eou__")
        assert 2 <= context.count("__eot__") <= 5
        assert (origin(response) == origin(context)) == (label == "1")


def test_eval_layout_and_distractors_from_other_dialogues(tmp_path: Path) -> None:
    out = build(tmp_path, n=60)
    for name in ("valid", "test"):
        rows = read(out / f"{name}.csv")
        assert tuple(rows[0]) == EVAL_HEADER and len(rows) == 4  # 5 % of 60 dialogues
        for context, truth, *distractors in rows[1:]:
            assert len(distractors) == 9 and context.endswith("__eot__")
            assert origin(truth) == origin(context)
            assert all(origin(d).isdisjoint(origin(context)) for d in distractors)


def test_summary_counts(tmp_path: Path) -> None:
    summary = build_dataset([dialogue(i) for i in range(40)], tmp_path, BuildOptions("none"))
    assert summary.dialogues == {"train": 36, "valid": 2, "test": 2}
    assert summary.train_pairs == 36 and summary.eval_rows == {"valid": 2, "test": 2}
    assert "training pairs: 36" in str(summary)


def test_positives_only(tmp_path: Path) -> None:
    rows = read(build(tmp_path, examples=50, positives_only=True) / "train.csv")
    assert {r[2] for r in rows[1:]} == {"1"}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    files = ("train.csv", "valid.csv", "test.csv")
    a, b, c = (build(tmp_path / k, seed=s) for k, s in (("a", 1), ("b", 1), ("c", 2)))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "train.csv").read_bytes() != (c / "train.csv").read_bytes()
    assert b"\r\n" not in (a / "train.csv").read_bytes()


def test_fraction_split_is_by_time_with_undated_in_train() -> None:
    dialogues = [*reversed([dialogue(i) for i in range(20)]), dialogue(99, date=None)]
    splits, _ = split_dialogues(dialogues, SplitOptions(valid_fraction=0.1, test_fraction=0.1))
    assert [d.id for d in splits["test"]] == ["id018", "id019"]
    assert [d.id for d in splits["valid"]] == ["id016", "id017"]
    assert splits["train"][0].id == "id099"


def test_date_split_and_exclusion_window() -> None:
    dialogues = [dialogue(i) for i in range(30)]  # one a day from START
    day = START.replace
    options = SplitOptions(
        valid_from=day(day=21),
        test_from=day(day=26),
        exclude_from=day(day=5),
        exclude_to=day(day=10),
    )
    splits, excluded = split_dialogues(dialogues, options)
    assert excluded == 5
    assert all(d.date < day(day=5) or day(day=10) <= d.date < day(day=21) for d in splits["train"])  # type: ignore[operator]
    assert [d.date.day for d in splits["valid"]] == [21, 22, 23, 24, 25]  # type: ignore[union-attr]
    assert [d.date.day for d in splits["test"]] == [26, 27, 28, 29, 30]  # type: ignore[union-attr]


def test_inconsistent_split_options_are_rejected() -> None:
    with pytest.raises(ValueError):
        SplitOptions(valid_from=START)
    with pytest.raises(ValueError):
        SplitOptions(valid_fraction=0.6, test_fraction=0.5)


def test_failed_build_leaves_no_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        build_dataset([dialogue(0)], tmp_path, BuildOptions("none", examples=3))
    assert list(tmp_path.iterdir()) == []


def test_normalisation_and_markers(tmp_path: Path) -> None:
    one = Dialogue("x", START, (("Hello, World!",), ("Hi!", "Yes"), ("Bye.",)))
    options = BuildOptions("tokenize", examples=1, positives_only=True, split=SplitOptions(0, 0))
    build_dataset([one], tmp_path, options)
    assert read(tmp_path / "train.csv")[1] == [
        "hello , world ! __eou__ __eot__ hi ! __eou__ yes __eou__ __eot__",
        "bye . __eou__",
        "1",
    ]
    assert read(tmp_path / "valid.csv") == [list(EVAL_HEADER)]


def test_each_evaluation_row_keeps_its_raw_text_beside_it(tmp_path: Path) -> None:
    from chatbot.text import Normalizer
    from training.build import TurnTexts
    from training.sources.udc_csv import read_eval_rows

    # Mixed case and punctuation, which the "tokenize" normalisation changes; one utterance
    # a turn, so that a raw turn is that utterance (raw_turn joins several with spaces).
    day = [START + dt.timedelta(days=i) for i in range(60)]
    dialogues = [
        Dialogue(f"id{i}", day[i], tuple((f"D{i}, Turn {t}!",) for t in range(6)))
        for i in range(60)
    ]
    build_dataset(dialogues, tmp_path, BuildOptions("tokenize"))
    texts = TurnTexts(Normalizer("tokenize"))
    for name in ("valid", "test"):
        rows = list(read_eval_rows(tmp_path / f"{name}.csv"))
        assert len(rows) == 3 and (tmp_path / f"{name}.raw.jsonl").is_file()
        for row in rows:
            assert row.raw is not None and row.raw.turns[0].startswith("D")  # as written
            # The raw text is the row's own: normalised, it gives the CSV's texts back.
            assert texts.context([(t,) for t in row.raw.turns]) == row.context
            assert [texts.response((c,)) for c in row.raw.candidates] == list(row.candidates)


def test_the_raw_text_must_fit_its_rows(tmp_path: Path) -> None:
    from training.errors import DataError
    from training.sources.udc_csv import read_eval_rows

    out = build(tmp_path, n=60)
    sidecar = out / "valid.raw.jsonl"
    lines = sidecar.read_text().splitlines()
    sidecar.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"valid\.raw\.jsonl:2: not JSON"):
        list(read_eval_rows(out / "valid.csv"))
    sidecar.write_text("\n".join(lines[:-1]) + "\n")  # a row short
    with pytest.raises(DataError, match=r"valid\.raw\.jsonl: 2 rows, but .* has more"):
        list(read_eval_rows(out / "valid.csv"))
    sidecar.write_text("\n".join([*lines, lines[0]]) + "\n")  # a row too many
    with pytest.raises(DataError, match=r"valid\.raw\.jsonl: 4 rows, but .* has 3"):
        list(read_eval_rows(out / "valid.csv"))
    sidecar.write_text('{"turns": ["hi"], "candidates": ["a", "b"]}\n' + "\n".join(lines[1:]))
    with pytest.raises(DataError, match=r"valid\.raw\.jsonl:1: 2 candidates, the row 10"):
        list(read_eval_rows(out / "valid.csv"))
    sidecar.write_text('{"turns": [], "candidates": ["a"]}\n')
    with pytest.raises(DataError, match=r"valid\.raw\.jsonl:1: turns: expected a non-empty"):
        list(read_eval_rows(out / "valid.csv"))


def test_a_context_is_its_turns_joined_however_often_a_turn_recurs():
    """Each turn is joined once and reused in every later context: the same text as joining
    the whole context anew (whitespace inside utterances collapsed, markers in place)."""
    from chatbot.text import Normalizer, join_turns
    from training.build import TurnTexts

    texts = TurnTexts(Normalizer("none"))
    turns = [("hi  there", "any\tone?"), ("yes",), ("my wifi\ndrops",), ("which card?",)]
    for end in range(1, len(turns) + 1):  # every context of the dialogue, growing
        expected = join_turns(texts.utterances(t) for t in turns[:end])
        assert texts.context(turns[:end]) == expected
    assert texts.context(turns[:2]) == (
        "hi there __eou__ any one? __eou__ __eot__ yes __eou__ __eot__"
    )
    assert texts.context([]) == ""
