"""The response repository file: curated training turns, raw text beside the normalised form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.text import Normalizer
from training.build import TurnTexts
from training.dialogue import Dialogue
from training.errors import DataError
from training.repository import RepositoryOptions, write_repository
from training.responses import read_responses

DIALOGUES = [
    Dialogue(
        "a",
        None,
        (
            ("My WiFi is down",),  # the opener's question
            ("Try: sudo modprobe ath9k", "then reboot"),  # a helper's answer, two utterances
            ("ok",),
            ("!theme",),  # a bot command, on the helper's side
        ),
    ),
    Dialogue("b", None, (("wifi down again",), ("try: SUDO modprobe   ath9k\nthen reboot!",))),
]


def test_answers_only_with_noise_and_near_duplicates_dropped(tmp_path: Path) -> None:
    texts = TurnTexts(Normalizer("tokenize"))
    path = tmp_path / "responses.jsonl"
    assert write_repository(path, DIALOGUES, texts, RepositoryOptions()) == 1
    [entry] = [json.loads(line) for line in path.read_text().splitlines()]
    # Shown as written, one utterance a line; the model's form is the build's own.
    assert entry == {
        "text": "Try: sudo modprobe ath9k\nthen reboot",
        "normalized": "try : sudo modprobe ath9k __eou__ then reboot __eou__",
    }


def test_every_turn_after_the_first_when_asked(tmp_path: Path) -> None:
    texts = TurnTexts(Normalizer("tokenize"))
    path = tmp_path / "responses.jsonl"
    options = RepositoryOptions(answers_only=False, drop_commands=False, min_words=1)
    write_repository(path, DIALOGUES, texts, options)
    shown = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    assert shown == ["Try: sudo modprobe ath9k\nthen reboot", "ok", "!theme"]


def test_read_responses_keeps_the_build_s_normalised_form(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        {"text": "Hello There", "normalized": "as built __eou__"},
        {"text": "Second"},
        "Hello There",  # a repeat: the first occurrence wins
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    found = read_responses(path, "auto", Normalizer("tokenize"))
    assert (found.shown, found.normalized, found.display) == (
        ["Hello There", "Second"],
        ["as built __eou__", "second __eou__"],
        "raw",
    )


def test_a_bad_normalised_field_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "x", "normalized": 3}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:2: \"normalized\" must be"):
        read_responses(path, "auto", Normalizer("tokenize"))


def test_a_udc_csv_can_only_show_normalised_text(tmp_path: Path) -> None:
    from training.sources.udc_csv import TRAIN_HEADER, write_csv

    path = tmp_path / "train.csv"
    write_csv(path, TRAIN_HEADER, [("hi __eou__ __eot__", "it be fine __eou__ ok __eou__", 1)])
    found = read_responses(path, "auto", Normalizer("udc"))
    assert (found.shown, found.display) == (["it be fine\nok"], "normalized")
