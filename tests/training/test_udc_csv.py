"""Streaming UDC readers on tiny files written in each test (never the shared data)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.errors import BadRowCounter, DataError
from training.sources.udc_csv import (
    EvalRow,
    TrainRow,
    count_rows,
    detect_layout,
    read_eval_rows,
    read_train_rows,
    read_v1_eval_rows,
    read_v1_train_rows,
)

EVAL_HEADER = ["Context", "Ground Truth Utterance"] + [f"Distractor_{i}" for i in range(9)]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def eval_row(i: int) -> list[str]:
    return [f"c{i} __eou__ __eot__", f"r{i} __eou__"] + [f"d{i}_{j} __eou__" for j in range(9)]


def test_train_rows_stream_with_labels_and_multiline_fields(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "train.csv",
        [
            ["Context", "Utterance", "Label"],
            ["hi __eou__ __eot__", "hello __eou__", "1"],
            ["two\nlines __eou__ __eot__", "x __eou__", "0.0"],  # lines 3-4
            ["a __eou__ __eot__", "b __eou__", "1.0"],
        ],
    )
    assert list(read_train_rows(path)) == [
        TrainRow("hi __eou__ __eot__", "hello __eou__", 1),
        TrainRow("two\nlines __eou__ __eot__", "x __eou__", 0),
        TrainRow("a __eou__ __eot__", "b __eou__", 1),
    ]
    assert count_rows(path) == 3


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        (["only two", "columns"], "expected 3 columns, found 2"),
        (["ctx", "resp", "1", "extra"], "expected 3 columns, found 4"),
        (["  ", "resp", "1"], "empty Context"),
        (["ctx", "", "0"], "empty Utterance"),
        (["ctx", "resp", "2"], "label '2' is not 0 or 1"),
        (["ctx", "resp", "yes"], "label 'yes' is not 0 or 1"),
    ],
)
def test_malformed_train_row_names_file_and_line(
    tmp_path: Path, bad_row: list[str], reason: str
) -> None:
    # Header on line 1, a two-line row on lines 2-3, so the bad row starts on line 4.
    path = write_csv(
        tmp_path / "train.csv",
        [["Context", "Utterance", "Label"], ["a\nb", "c", "1"], bad_row, ["d", "e", "0"]],
    )
    with pytest.raises(DataError) as err:
        list(read_train_rows(path))
    assert (err.value.path, err.value.line, err.value.reason) == (str(path), 4, reason)
    assert str(err.value).startswith(f"{path}:4: ")


def test_invalid_utf8_reports_its_line_and_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(
        b"Context,Utterance,Label\r\n"
        b"ok __eou__ __eot__,fine __eou__,1\r\n"
        b'"multi\r\nline \xff here",bad __eou__,0\r\n'  # the bad byte is on line 4
        b"last __eou__ __eot__,row __eou__,0\r\n"
    )
    with pytest.raises(DataError) as err:
        list(read_train_rows(path))
    assert err.value.line == 4
    assert "invalid UTF-8" in err.value.reason

    bad = BadRowCounter(skip=True)
    rows = list(read_train_rows(path, bad))
    assert [r.context for r in rows] == ["ok __eou__ __eot__", "last __eou__ __eot__"]
    assert bad.count == 1


def test_skip_mode_counts_every_bad_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "train.csv",
        [
            ["Context", "Utterance", "Label"],
            ["a", "b", "1"],
            ["a", "b"],
            ["", "b", "0"],
            ["a", "b", "x"],
            ["c", "d", "0"],
        ],
    )
    bad = BadRowCounter(skip=True)
    assert [r.context for r in read_train_rows(path, bad)] == ["a", "c"]
    assert bad.count == 3
    assert bad.examples[0] == f"{path}:3: expected 3 columns, found 2"


def test_eval_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "test.csv", [EVAL_HEADER, eval_row(0), eval_row(1)])
    rows = list(read_eval_rows(path))
    assert len(rows) == 2
    assert rows[1] == EvalRow(
        "c1 __eou__ __eot__", "r1 __eou__", tuple(f"d1_{j} __eou__" for j in range(9))
    )
    assert rows[1].candidates[0] == "r1 __eou__"
    assert len(rows[1].candidates) == 10


def test_malformed_eval_rows(tmp_path: Path) -> None:
    short = eval_row(1)[:10]
    empty = eval_row(2)
    empty[7] = ""
    path = write_csv(tmp_path / "test.csv", [EVAL_HEADER, eval_row(0), short, empty, eval_row(3)])
    with pytest.raises(DataError, match=r"test\.csv:3: expected 11 columns, found 10"):
        list(read_eval_rows(path))
    bad = BadRowCounter(skip=True)
    assert [r.response for r in read_eval_rows(path, bad)] == ["r0 __eou__", "r3 __eou__"]
    assert bad.count == 2
    assert bad.examples[1] == f"{path}:4: empty Distractor_5"


def test_detect_layout(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [["Context", "Utterance", "Label"]])
    evaluation = write_csv(tmp_path / "valid.csv", [EVAL_HEADER])
    v1 = tmp_path / "train.txt"
    v1.write_text("1\thi\thello\n", encoding="utf-8")
    other = write_csv(tmp_path / "other.csv", [["text", "label"]])
    assert detect_layout(train) == "train"
    assert detect_layout(evaluation) == "eval"
    assert detect_layout(v1) == "v1"
    with pytest.raises(DataError, match=r"other\.csv:1: unrecognised header"):
        detect_layout(other)


def test_reader_rejects_the_other_v2_layout(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [["Context", "Utterance", "Label"], ["a", "b", "1"]])
    evaluation = write_csv(tmp_path / "valid.csv", [EVAL_HEADER, eval_row(0)])
    with pytest.raises(DataError, match=r"train\.csv:1: expected the evaluation layout"):
        list(read_eval_rows(train))
    with pytest.raises(DataError, match=r"valid\.csv:1: expected the train layout"):
        list(read_train_rows(evaluation))


def test_v1_train_rows_join_turns_in_udc_layout(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(
        "1\thow do i x\tuse y\tthanks\tno problem\n"
        "0\tfirst __eou__ second __eou__\tok __eou__\tbye\n"  # turns with their own markers
        "\n",
        encoding="utf-8",
    )
    assert list(read_v1_train_rows(path)) == [
        TrainRow(
            "how do i x __eou__ __eot__ use y __eou__ __eot__ thanks __eou__ __eot__",
            "no problem __eou__",
            1,
        ),
        TrainRow("first __eou__ second __eou__ __eot__ ok __eou__ __eot__", "bye __eou__", 0),
    ]
    # read_train_rows detects the layout and gives the same rows.
    assert list(read_train_rows(path)) == list(read_v1_train_rows(path))
    assert count_rows(path) == 2


def test_v1_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("1\tctx\tresp\n1\tonly\n2\tctx\tresp\n0\tctx\t \n0\tc\tr\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.txt:2: expected label, turns and response"):
        list(read_v1_train_rows(path))
    bad = BadRowCounter(skip=True)
    assert [r.label for r in read_v1_train_rows(path, bad)] == [1, 0]
    assert bad.count == 3
    assert bad.examples[1:] == [
        f"{path}:3: label '2' is not 0 or 1",
        f"{path}:4: empty response",
    ]


def v1_group(context: str, n: int = 10) -> list[str]:
    return [f"1\t{context}\ttrue answer"] + [f"0\t{context}\twrong {j}" for j in range(n - 1)]


def test_v1_eval_groups(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    path.write_text("\n".join(v1_group("q one") + v1_group("q two")) + "\n", encoding="utf-8")
    rows = list(read_v1_eval_rows(path))
    assert len(rows) == 2
    assert rows[1].context == "q two __eou__ __eot__"
    assert rows[1].response == "true answer __eou__"
    assert rows[1].distractors == tuple(f"wrong {j} __eou__" for j in range(9))
    assert list(read_eval_rows(path)) == rows  # layout detected


def test_v1_eval_bad_groups(tmp_path: Path) -> None:
    lines = v1_group("a")  # lines 1-10: fine
    lines += v1_group("b", n=9)  # lines 11-19: one negative short
    mismatched = v1_group("c")
    mismatched[4] = "0\tsomething else\twrong"  # line 24
    lines += mismatched  # lines 20-29
    lines += ["0\tstray\tnegative"]  # line 30: belongs to the broken group "c"
    lines += v1_group("d")  # lines 31-40: fine
    path = tmp_path / "test.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.txt:11: group has 9 lines, expected 10"):
        list(read_v1_eval_rows(path))
    bad = BadRowCounter(skip=True)
    assert [r.context for r in read_v1_eval_rows(path, bad)] == [
        "a __eou__ __eot__",
        "d __eou__ __eot__",
    ]
    assert bad.examples == [
        f"{path}:11: group has 9 lines, expected 10",
        f"{path}:24: context differs from the positive at line 20",
        f"{path}:30: context differs from the positive at line 20",
    ]


def test_v1_negative_before_positive(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    path.write_text("0\tq\tr\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.txt:1: negative line before any positive"):
        list(read_v1_eval_rows(path))
