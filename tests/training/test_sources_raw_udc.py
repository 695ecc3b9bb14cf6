"""Raw UDC readers: TSV tree, Kaggle-style CSV, Pimlico JSON."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from training.errors import BadRowCounter, DataError
from training.sources.raw_udc import read_pimlico_json, read_udc_csv, read_udc_tsv_dir

KAGGLE_HEADER = "folder,dialogueID,date,from,to,text\n"
# d1: two people, 3 turns (kept); d2: only 2 turns (dropped); d3: three people (dropped).
KAGGLE_ROWS = (
    "3,d1.tsv,2010-01-02T10:00:00.000Z,ann,,how do I mount a disk?\n"
    '3,d1.tsv,2010-01-02T10:01:00.000Z,bob,ann,"use mount, or the file manager"\n'
    "3,d1.tsv,2010-01-02T10:02:00.000Z,ann,bob,thanks\n"
    "3,d1.tsv,2010-01-02T10:02:00.000Z,ann,bob,it works\n"
    "3,d2.tsv,2011-05-06T08:00:00.000Z,cat,,hello\n"
    "3,d2.tsv,2011-05-06T08:00:00.000Z,dan,cat,hi\n"
    "4,d3.tsv,2012-01-01T00:00:00.000Z,eve,,question\n"
    "4,d3.tsv,2012-01-01T00:00:00.000Z,fay,eve,answer\n"
    "4,d3.tsv,2012-01-01T00:00:00.000Z,gus,eve,other answer\n"
)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_kaggle_csv_keeps_two_party_dialogues_of_three_turns(tmp_path: Path) -> None:
    dialogues = list(read_udc_csv(write(tmp_path / "d.csv", KAGGLE_HEADER + KAGGLE_ROWS)))
    assert [d.id for d in dialogues] == ["3/d1.tsv"]
    assert dialogues[0].date == dt.date(2010, 1, 2)
    assert dialogues[0].turns == (
        ("how do I mount a disk?",),
        ("use mount, or the file manager",),
        ("thanks", "it works"),
    )


def test_csv_without_folder_column(tmp_path: Path) -> None:
    rows = "".join(line.split(",", 1)[1] + "\n" for line in KAGGLE_ROWS.splitlines())
    path = write(tmp_path / "d.csv", "dialogueID,date,from,to,text\n" + rows)
    assert [d.id for d in read_udc_csv(path)] == ["d1.tsv"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("3,d1.tsv,2010-01-02,ann,bob\n", "fields"),
        ("3,d1.tsv,yesterday,ann,bob,hi\n", "date"),
        ("3,d1.tsv,2010-01-02,,bob,hi\n", "missing"),
        (b"3,d1.tsv,2010-01-02,ann,bob,caf\xe9\n", "UTF-8"),
    ],
)
def test_bad_csv_row_names_file_and_line(tmp_path: Path, row: str | bytes, reason: str) -> None:
    head = (KAGGLE_HEADER + KAGGLE_ROWS).encode()
    path = write(tmp_path / "bad.csv", head + (row if isinstance(row, bytes) else row.encode()))
    with pytest.raises(DataError, match=reason) as error:
        list(read_udc_csv(path))
    assert (error.value.path, error.value.line) == (str(path), 11)


def test_bad_csv_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    bad_rows = "3,d1.tsv,2010-01-02,ann\n3,d1.tsv,never,ann,bob,x\n"
    path = write(tmp_path / "bad.csv", KAGGLE_HEADER + bad_rows + KAGGLE_ROWS)
    counter = BadRowCounter(skip=True)
    assert [d.id for d in read_udc_csv(path, counter)] == ["3/d1.tsv"]
    assert counter.count == 2


def test_csv_with_unknown_header_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="header"):
        list(read_udc_csv(write(tmp_path / "x.csv", "a,b,c\n1,2,3\n")))


def test_tsv_tree_reads_one_dialogue_per_file(tmp_path: Path) -> None:
    lines = "2009-03-04T05:06:00.000Z\tann\t\tq?\n2009-03-04T05:07:00.000Z\tbob\tann\ta\n"
    write(tmp_path / "3" / "7.tsv", lines + "2009-03-05T00:00:00.000Z\tann\tbob\tok\n")
    write(tmp_path / "3" / "8.tsv", lines)  # two turns only
    dialogues = list(read_udc_tsv_dir(tmp_path))
    assert [(d.id, d.date, d.n_turns) for d in dialogues] == [("3/7.tsv", dt.date(2009, 3, 4), 3)]


def test_tsv_bad_line_raises_and_is_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "3" / "1.tsv", "2009-03-04\tann\tq?\n")
    with pytest.raises(DataError) as error:
        list(read_udc_tsv_dir(tmp_path))
    assert (error.value.path, error.value.line) == (str(path), 1)
    counter = BadRowCounter(skip=True)
    assert list(read_udc_tsv_dir(tmp_path, counter)) == []
    assert counter.count == 1


def test_pimlico_lines_alternate_speakers(tmp_path: Path) -> None:
    items = [
        {"dialogue_id": "5/1.tsv", "timestamp": "2006-02-03T04:05:00.000Z", "text": "a\nb\nc\nd"},
        {"dialogue_id": "5/2.tsv", "timestamp": "2006-02-03T04:05:00.000Z", "text": "a\nb"},
    ]
    dialogues = list(read_pimlico_json(write(tmp_path / "p.json", json.dumps(items))))
    assert [(d.id, d.date, d.turns) for d in dialogues] == [
        ("5/1.tsv", dt.date(2006, 2, 3), (("a",), ("b",), ("c",), ("d",)))
    ]


def test_pimlico_bad_item_raises_or_is_counted(tmp_path: Path) -> None:
    items = [{"dialogue_id": "x", "timestamp": "soon", "text": "a\nb\nc"}]
    path = write(tmp_path / "p.json", json.dumps(items))
    with pytest.raises(DataError, match="#0"):
        list(read_pimlico_json(path))
    counter = BadRowCounter(skip=True)
    assert list(read_pimlico_json(path, counter)) == []
    assert counter.count == 1


@pytest.mark.shared_data
def test_real_kaggle_and_liuzqt_csv(shared_data: Path) -> None:
    raw = shared_data / "udc" / "raw_dialogs"
    kaggle = list(read_udc_csv(raw / "kaggle_dialogueText_first9999.csv"))
    liuzqt = list(read_udc_csv(raw / "liuzqt_raw_dialogs_50.csv"))
    assert len(kaggle) > 500 and len(liuzqt) > 10
    assert all(d.n_turns >= 3 and d.date for d in kaggle + liuzqt)


@pytest.mark.shared_data
def test_real_pimlico_json(shared_data: Path) -> None:
    dialogues = list(
        read_pimlico_json(shared_data / "udc/raw_dialogs/pimlico_dialogues_small.json")
    )
    assert len(dialogues) == 2002
