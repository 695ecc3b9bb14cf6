"""The Ubuntu data build and the Ubuntu recipe of the pipeline, on a tiny generated stand-in
for the shared data folder."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from chatbot.scoring import ScoreParts
from chatbot.sentence import SENTENCE_ADAPTER
from chatbot.text import Normalizer
from tests.helpers import tiny_sentence_source
from training.build import TurnTexts, split_dialogues
from training.dialogue import Dialogue
from training.embeddings import train_word2vec
from training.hybrid import tune_lexical_weight
from training.pairs import dialogue_pairs
from training.pipeline import PipelineOptions, run_pipeline
from training.recipes import ubuntu_recipe
from training.sentence_adapter import PAIRS
from training.shared_data import shared_data_dir
from training.sources.registry import SOURCES
from training.sources.udc_csv import EVAL_HEADER, TRAIN_HEADER, read_eval_rows, read_train_rows
from training.ubuntu_data import (
    OFFICIAL_TEST,
    OFFICIAL_TRAIN,
    OFFICIAL_VALID,
    DataOptions,
    build_ubuntu_data,
    read_ubuntu_dialogues,
)

IRC_ARCHIVE = SOURCES["irc"].default_path or ""
PIMLICO_JSON = SOURCES["pimlico"].default_path or ""

TOPICS = [
    "wifi driver card broken",
    "sound alsa pulse mute",
    "grub boot menu missing",
    "apt install package error",
    "xorg screen resolution wrong",
    "disk mount partition full",
]

# Log dates: training years, one inside the official UDC valid/test period (left out of
# training), and the held-out validation (2015) and test (2016+) periods of DataOptions.
LOG_DATES = ["2009-03-01", "2010-05-02", "2011-07-03", "2012-06-15", "2015-02-01", "2016-03-01"]


def _irc_log(seed: int, n_dialogues: int = 6) -> str:
    """Unannotated #ubuntu-like lines: askers and helpers addressing each other by nick."""
    lines = []
    for i in range(n_dialogues):
        topic = TOPICS[(seed + i) % len(TOPICS)]
        asker, helper = f"user{seed}x{i}", f"helper{seed}x{i}"
        minute = i * 20
        for j, (nick, to, text) in enumerate(
            [
                (asker, None, f"my {topic} help please"),
                (helper, asker, f"check the {topic} settings first"),
                (asker, helper, f"the {topic} settings look fine"),
                (helper, asker, f"then reinstall the {topic} stuff"),
                (asker, helper, f"thanks the {topic} works now"),
            ]
        ):
            stamp = f"[{(minute + j) // 60:02d}:{(minute + j) % 60:02d}]"
            lines.append(f"{stamp} <{nick}> {to + ': ' if to else ''}{text}")
    return "\n".join(lines) + "\n"


def _write_udc_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def fake_shared(tmp_path_factory) -> Path:
    """A shared-data folder with the layout the pipeline reads, filled with generated text."""
    root = tmp_path_factory.mktemp("shared")
    archive = root / IRC_ARCHIVE
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for n, date in enumerate(LOG_DATES):
            data = _irc_log(n).encode()
            info = tarfile.TarInfo(f"data/train/{date}_00.ascii.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pimlico = [
        {
            "dialogue_id": f"p{i}",
            "timestamp": f"2008-0{1 + i % 9}-10T10:00:00",
            "text": "\n".join(f"{TOPICS[i % 6]} turn {k}" for k in range(4)),
        }
        for i in range(8)
    ]
    (root / PIMLICO_JSON).parent.mkdir(parents=True)
    (root / PIMLICO_JSON).write_text(json.dumps(pimlico))
    turn = "{} __eou__ __eot__"
    for k, rel in enumerate(OFFICIAL_TRAIN):
        rows = [[turn.format(t) + " " + turn.format(t), f"{t} __eou__", str(k % 2)] for t in TOPICS]
        _write_udc_csv(root / rel, TRAIN_HEADER, rows)
    for rel in (OFFICIAL_VALID, OFFICIAL_TEST):
        rows = [
            [
                turn.format(t),
                f"{t} __eou__",
                *(f"{TOPICS[(i + j) % 6]} __eou__" for j in range(1, 10)),
            ]
            for i, t in enumerate(TOPICS)
        ]
        _write_udc_csv(root / rel, EVAL_HEADER, rows)
    return root


def test_shared_data_dir(monkeypatch):
    monkeypatch.setenv("CHATBOT_SHARED_DATA", "/data/x")
    assert shared_data_dir() == Path("/data/x")
    assert shared_data_dir("given") == Path("given")
    monkeypatch.delenv("CHATBOT_SHARED_DATA")
    assert shared_data_dir() == Path("../shared/data")


def test_dialogue_pairs_take_every_turn_from_the_third():
    d = Dialogue("d", None, (("a",), ("b", "b2"), ("c",), ("d",), ("e",)))
    pairs = list(dialogue_pairs([d], TurnTexts(Normalizer("none")), max_turns=2))
    assert pairs == [
        ("a __eou__ __eot__ b __eou__ b2 __eou__ __eot__", "c __eou__", 1),
        ("b __eou__ b2 __eou__ __eot__ c __eou__ __eot__", "d __eou__", 1),  # last 2 turns
        ("c __eou__ __eot__ d __eou__ __eot__", "e __eou__", 1),
    ]


def test_read_sources_prefix_ids_and_skip_missing(fake_shared):
    dialogues = read_ubuntu_dialogues(fake_shared)
    assert set(dialogues) == {"irc", "pimlico"}  # no Kaggle/liuzqt CSVs in the fake folder
    assert len(dialogues["irc"]) == 6 * len(LOG_DATES) and len(dialogues["pimlico"]) == 8
    assert all(d.id.startswith("irc/") for d in dialogues["irc"])


def test_build_splits_by_time_and_leaves_out_the_official_period(fake_shared, tmp_path):
    dialogues = read_ubuntu_dialogues(fake_shared)
    official = [fake_shared / p for p in OFFICIAL_TRAIN]
    summary = build_ubuntu_data(
        dialogues, tmp_path, DataOptions(), official_train=official, normalization="tokenize"
    )
    # 6 logs x 6 dialogues + 8 Pimlico; 2012-06-15 is inside the official period.
    assert summary.split == {"train": 6 * 3 + 8, "valid": 6, "test": 6}
    assert summary.excluded == 6
    # IRC dialogues have 5 turns (3 pairs each), Pimlico ones 4 (2 pairs each).
    assert summary.train_pairs == 6 * 3 * 3 + 8 * 2
    assert summary.official_pairs == len(OFFICIAL_TRAIN) * len(TOPICS)
    train = list(read_train_rows(tmp_path / "train.csv"))
    # A restatement for every pair, and another dialogue's opening for most of them.
    assert summary.train_pairs < summary.hard_negatives <= 2 * summary.train_pairs
    assert len(train) == summary.train_pairs + summary.hard_negatives + summary.official_pairs
    assert {r.label for r in train} == {0, 1}  # the official rows keep their labels
    assert len(list(read_eval_rows(tmp_path / "valid.csv"))) == 6
    assert len(list(read_eval_rows(tmp_path / "test.csv"))) == 6
    # Nothing from the held-out logs or the official period is trained on.
    held_out = {f"user{n}x" for n in (3, 4, 5)}  # logs 2012-06-15, 2015-02-01, 2016-03-01
    text = (tmp_path / "train.csv").read_text() + (tmp_path / "sentences.txt").read_text()
    assert not any(nick in text for nick in held_out)
    assert "user0x0" not in text  # the "nick:" address prefix is removed, as in UDC
    # The context adapter's pairs: every training pair (fewer than ADAPTER_PAIRS), raw.
    pairs = (tmp_path / PAIRS).read_text()
    assert summary.adapter_pairs == summary.train_pairs == len(pairs.splitlines())
    assert not any(nick in pairs for nick in held_out)
    # The same seed gives the same files.
    again = tmp_path / "again"
    build_ubuntu_data(
        dialogues, again, DataOptions(), official_train=official, normalization="tokenize"
    )
    for name in ("train.csv", "valid.csv", "test.csv", PAIRS):
        assert (again / name).read_bytes() == (tmp_path / name).read_bytes()


def test_tune_lexical_weight_by_hand():
    # Row 1: neural prefers the wrong candidate by 1, lexical prefers the right one by 0.5,
    # so any weight above 2 fixes it; row 2 is right by 3 neurally and wrong by 0.5 lexically,
    # so weights of 6 and more break it. Best: the smallest weight in (2, 6), here 3.
    neural = np.array([[0.0, 1.0], [3.0, 0.0]])
    cosine = np.array([[0.5, 0.0], [0.0, 0.5]])
    parts = ScoreParts(neural, cosine, bias=-7.0)  # the bias moves no ranking
    weight, table = tune_lexical_weight([parts], grid=(0.0, 1.0, 3.0, 5.0, 8.0))
    assert weight == 3.0
    assert [t["recall@1"] for t in table] == [0.5, 0.5, 1.0, 1.0, 0.5]


def test_word_vectors_fill_the_vocabulary_rows(tmp_path):
    sentences = tmp_path / "s.txt"
    sentences.write_text("\n".join(f"the {t}" for t in TOPICS * 5) + "\n")
    words = ["<pad>", "<unk>", "the", "wifi", "never-seen"]
    table, found = train_word2vec(sentences, words, dim=8, seed=0, scale=0.1)
    assert table.shape == (5, 8) and table.dtype == np.float32
    assert found == 2  # "the" and "wifi"
    assert not table[0].any()  # padding stays zero
    assert np.abs(table[4]).max() <= 0.05  # an unknown word keeps the small random init


@pytest.mark.slow
def test_pipeline_end_to_end(fake_shared, tmp_path):
    from chatbot.artifact import load_artifact
    from chatbot.index import load_index

    out = tmp_path / "ubuntu"
    recipe = ubuntu_recipe(fake_shared, preset="tiny")
    sentence = tiny_sentence_source(tmp_path / "sentence")
    report = run_pipeline(recipe, PipelineOptions(out, max_steps=20, sentence=sentence))
    artifact = load_artifact(out / "model")
    # The context adapter is fitted in the semantic step: on this slice's 70 pairs, too few.
    assert report["semantic"]["adapter"] == {"pairs": 70, "pass_kept": 0}
    assert SENTENCE_ADAPTER not in artifact.manifest["files"]
    index = load_index(out / "index", artifact)
    weight = report["hybrid"]["lexical_weight"]
    assert artifact.config.lexical_weight == weight
    # The TF-IDF model is kept at any weight: the echo rule uses it.
    assert artifact.lexical is not None and index.lexical is not None
    assert artifact.config.echo_cosine == report["echo"]["echo_cosine"]
    assert len(index) == report["index_responses"] > 0
    for name in ("own_test", "first100_test"):
        results = json.loads((out / f"eval_{name}.json").read_text())["results"]
        assert set(results) == {"model", "tfidf", "random"}
        assert (out / f"eval_{name}.png").is_file()
    assert report["data"]["excluded"] == 6
    # Re-running with --reuse-data keeps the data files.
    before = (out / "data" / "train.csv").stat().st_mtime_ns
    report = run_pipeline(recipe, PipelineOptions(out, max_steps=5, reuse={"data"}))
    assert (out / "data" / "train.csv").stat().st_mtime_ns == before
    assert report["steps"] == {
        "data": "reused",
        "model": "ran",
        "evaluation": "ran",
        "index": "ran",
    }


def test_the_official_period_is_left_out_of_training_to_its_last_day():
    def dated(day: str) -> Dialogue:
        return Dialogue(day, dt.date.fromisoformat(day), (("a",), ("b",), ("c",)))

    days = ["2012-04-26", "2012-04-27", "2012-12-01", "2012-12-02"]
    splits, excluded = split_dialogues([dated(d) for d in days], DataOptions().split)
    assert [d.id for d in splits["train"]] == ["2012-04-26", "2012-12-02"]
    assert excluded == 2
