"""IRC reader: gold reply-to threads, the ``nick:`` heuristic, archive and folder input."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from pathlib import Path

import pytest

from training.errors import BadRowCounter, DataError
from training.sources.irc import Message, addressed_dialogues, read_irc

# Lines 0-6 are unannotated context (heuristic); lines 7-13 carry gold links.
LOG = """\
[10:00] <ann> how do I mount a usb disk?
=== bob [~b@host] has joined #ubuntu
[10:01] <bob> ann: try the mount command
[10:02] <ann> bob: which options?
[10:02]  * carl waves
[10:03] <bob> use -t vfat
[10:04] <ann> thanks it works
[10:05] <dee> my wifi is down, any idea?
[10:06] <eve> dee: which driver?
[10:06] <fay> dee: check rfkill
[10:07] <dee> eve: iwlwifi
[10:07] <dee> fay: rfkill says unblocked
[10:08] <eve> dee: reload the module
[10:09] <dee> eve: that fixed it
"""
LINKS = "7 7 -\n7 8 -\n7 9 -\n8 10 -\n9 11 -\n10 12 -\n12 13 -\n"
NAME = "2010-01-02.train-a"


def make_folder(root: Path, log: str = LOG, links: str = LINKS) -> Path:
    folder = root / "data" / "train"
    folder.mkdir(parents=True)
    (folder / f"{NAME}.ascii.txt").write_text(log)
    (folder / f"{NAME}.annotation.txt").write_text(links)
    return root / "data"


def test_gold_threads_split_into_pairwise_dialogues(tmp_path: Path) -> None:
    gold = [d.turns for d in read_irc(make_folder(tmp_path)) if ":gold:" in d.id]
    question = ("my wifi is down, any idea?",)
    assert sorted(gold) == [
        (question, ("check rfkill",), ("rfkill says unblocked",)),
        (question, ("which driver?",), ("iwlwifi",), ("reload the module",), ("that fixed it",)),
    ]


def test_unannotated_lines_use_the_addressing_heuristic(tmp_path: Path) -> None:
    dialogues = {d.id: d for d in read_irc(make_folder(tmp_path))}
    dialogue = dialogues["train/2010-01-02.train-a:addr:0"]
    assert dialogue.date == dt.date(2010, 1, 2)
    assert dialogue.turns == (
        ("how do I mount a usb disk?",),
        ("try the mount command",),
        ("which options?",),
        ("use -t vfat",),
        ("thanks it works",),
    )
    assert len(dialogues) == 3


def test_addressed_dialogue_ends_after_a_long_gap() -> None:
    messages = [
        Message(0, 0, "a", "q?"),
        Message(1, 1, "b", "x", "a"),
        Message(2, 2, "a", "y", "b"),
        Message(3, 60, "b", "z", "a"),  # an hour later: a new dialogue
    ]
    assert [[m.index for m in d] for d in addressed_dialogues(messages)] == [[0, 1, 2], [3]]


def test_archive_reads_like_the_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "x")
    archive = tmp_path / "irc.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*.txt"), reverse=True):  # annotation after log
            data = path.read_bytes()
            info = tarfile.TarInfo(f"data/train/{path.name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(read_irc(archive)) == list(read_irc(folder))


def test_log_without_annotation_is_all_heuristic(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "train" / f"{NAME}.annotation.txt").unlink()
    assert all(":addr:" in d.id for d in read_irc(folder))


def test_malformed_log_line_names_file_and_line(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, log=LOG.replace("[10:03] <bob>", "10:03 bob"))
    with pytest.raises(DataError) as error:
        list(read_irc(folder))
    assert error.value.path.endswith(f"{NAME}.ascii.txt") and error.value.line == 6
    counter = BadRowCounter(skip=True)
    assert len(list(read_irc(folder, counter))) == 3
    assert counter.count == 1


def test_malformed_annotation_line_is_counted(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, links=LINKS + "7 x -\n")
    with pytest.raises(DataError, match=r"annotation\.txt:8"):
        list(read_irc(folder))
    counter = BadRowCounter(skip=True)
    list(read_irc(folder, counter))
    assert counter.count == 1


@pytest.mark.shared_data
def test_real_irc_archive(shared_data: Path) -> None:
    archive = shared_data / "ubuntu_irc" / "irc_disentangle_ubuntu_train_dev_test.tar.gz"
    dialogues = list(read_irc(archive))
    kinds = {d.id.split(":")[1] for d in dialogues}
    assert len(dialogues) > 10_000 and kinds == {"gold", "addr"}
    assert len({d.id for d in dialogues}) == len(dialogues)
    assert all(
        d.n_turns >= 3 and dt.date(2004, 1, 1) <= d.date <= dt.date(2019, 1, 1) for d in dialogues
    )  # type: ignore[operator]
