"""The extra #ubuntu logs: four layouts, one heuristic, on hand-written logs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from training.errors import BadRowCounter, DataError
from training.sources.irc_extra import read_irc_extra

TEXT_LOG = """=== ann [~a@host] has joined #ubuntu
[10:00] <ann> my sound is gone after the update
[10:01] <bob> ann: is it muted in alsamixer?
[10:02] <ann> bob: no, not muted
[10:03] * bob looks
[10:04] <bob> ann: then reinstall pulseaudio
"""
NICK_TSV = (
    "2005-01-01T10:00:00.000Z\tcat\thow do I mount a usb stick?\n"
    "2005-01-01T10:01:00.000Z\tdan\tcat: plug it in, it mounts under /media\n"
    "2005-01-01T10:02:00.000Z\tcat\tdan: it\tdoes not\n"  # a tab inside the text
    "2005-01-01T10:03:00.000Z\tdan\tcat: check dmesg then\n"
)
FROM_TO_TSV = (
    "2007-01-01T12:00:00.000Z\teve\t\tgrub is broken\n"
    "2007-01-01T12:01:00.000Z\tfay\teve\treinstall grub from a live cd\n"
    "2007-01-01T12:02:00.000Z\teve\tfay\thow?\n"
    "2007-01-01T12:03:00.000Z\tfay\teve\tsudo grub-install /dev/sda\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "ubuntu_2005-02-24.irclogs.txt").write_text(TEXT_LOG)
    (tmp_path / "ubuntu_2005-01-01.time_nick_text.tsv").write_text(NICK_TSV)
    (tmp_path / "ubuntu_2007-01-01.time_from_to_text.tsv").write_text(FROM_TO_TSV)
    return tmp_path


def test_every_layout_gives_its_dialogue(folder: Path) -> None:
    dialogues = {d.id: d for d in read_irc_extra(folder)}
    assert set(dialogues) == {
        "ubuntu_2005-01-01:addr:0",
        "ubuntu_2005-02-24:addr:0",
        "ubuntu_2007-01-01:addr:0",
    }
    sound = dialogues["ubuntu_2005-02-24:addr:0"]
    assert sound.date == dt.date(2005, 2, 24)
    assert sound.turns == (
        ("my sound is gone after the update",),
        ("is it muted in alsamixer?",),
        ("no, not muted",),
        ("then reinstall pulseaudio",),
    )
    usb = dialogues["ubuntu_2005-01-01:addr:0"]
    assert usb.turns[2] == ("it does not",) and usb.n_turns == 4  # whitespace collapsed
    grub = dialogues["ubuntu_2007-01-01:addr:0"]
    assert grub.date == dt.date(2007, 1, 1) and grub.turns[0] == ("grub is broken",)


def test_malformed_lines_stop_or_are_counted(folder: Path) -> None:
    bad_line = "[10:05] <nick with space> hello\n"
    (folder / "ubuntu_2005-02-24.irclogs.txt").write_text(TEXT_LOG + bad_line)
    with pytest.raises(DataError, match=r"irclogs\.txt:7: not an IRC message"):
        list(read_irc_extra(folder))
    counter = BadRowCounter(skip=True)
    assert len(list(read_irc_extra(folder, counter))) == 3 and counter.count == 1


def test_an_unknown_layout_is_named(folder: Path) -> None:
    (folder / "notes.md").write_text("hello")
    with pytest.raises(DataError, match="unknown log layout"):
        list(read_irc_extra(folder))
