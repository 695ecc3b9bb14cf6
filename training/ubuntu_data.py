"""The Ubuntu training data: UDC v2-style files from the public Ubuntu sources.

Dialogues from the #ubuntu IRC logs and the raw UDC dialogues (Kaggle and liuzqt CSVs, Pimlico
JSON; :mod:`training.sources.registry`) are normalised with the official UDC v2 recipe and split
by time: training dialogues dated inside the official UDC validation/test period are left out,
and the latest dialogues (``valid_from``/``test_from``) become held-out 1-in-10 rows
(``valid.csv``/``test.csv``, by :func:`training.build.write_dataset`). ``train.csv`` holds
**every** (context, next turn) pair of the training dialogues (the data is small, so sampling
one context length per dialogue as the UDC generator does would waste most of it), plus the
official UDC v2 training-layout sample files, shuffled with the seed. ``sentences.txt`` holds
every distinct training utterance: the word-vector corpus. ``pairs.raw.jsonl`` holds a sample
of the training pairs as people wrote them, for the sentence encoder's context adapter
(:mod:`training.sentence_adapter`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.text import EOT, EOU, Normalizer
from training.build import BuildOptions, SplitOptions, TurnTexts, split_dialogues, write_dataset
from training.dialogue import Dialogue
from training.errors import BadRowCounter
from training.pairs import dialogue_pairs, hard_negative_rows
from training.repository import RepositoryOptions, write_repository
from training.sentence_adapter import PAIRS, write_training_pairs
from training.sources.registry import SOURCES
from training.sources.udc_csv import read_train_rows

log = logging.getLogger(__name__)


# The raw sources (training.sources.registry); the first is required.
RAW_SOURCES = ("irc", "irc-extra", "kaggle", "liuzqt", "pimlico")
RESPONSES = "responses.jsonl"  # the repository: training turns as people wrote them
# Official UDC v2 files, relative to the shared data folder.
OFFICIAL_TRAIN = (
    "udc/v2_britz_stemmed/train_sample_a_1000.csv",
    "udc/v2_britz_stemmed/train_sample_b_1000.csv",
    "udc/v2_britz_stemmed/first100/train.csv",
)
OFFICIAL_VALID = "udc/v2_britz_stemmed/first100/valid.csv"
OFFICIAL_TEST = "udc/v2_britz_stemmed/first100/test.csv"

# The official UDC v2 validation/test period: 2012-04-27 .. 2012-12-01 inclusive.
# SplitOptions' exclusion window is half-open [from, to), hence the day after.
OFFICIAL_EVAL_FROM = dt.date(2012, 4, 27)
OFFICIAL_EVAL_TO = dt.date(2012, 12, 2)


@dataclass(frozen=True)
class DataOptions:
    """How the Ubuntu training and held-out files are made.

    Args:
        valid_from: dialogues from this date (up to ``test_from``) are held-out validation rows.
        test_from: dialogues from this date on are held-out test rows.
        exclude_from: training dialogues dated in [``exclude_from``, ``exclude_to``) are left out.
        exclude_to: see ``exclude_from`` (exclusive).
        max_turns: most context turns (the latest ones are kept).
        hard_negatives: write label-0 rows for each training pair (see
            :func:`hard_negative_rows`), which softmax training uses as hard negatives.
        seed: seeds distractors and the order of the training pairs.
    """

    valid_from: dt.date = dt.date(2015, 1, 1)
    test_from: dt.date = dt.date(2016, 1, 1)
    exclude_from: dt.date = OFFICIAL_EVAL_FROM
    exclude_to: dt.date = OFFICIAL_EVAL_TO
    max_turns: int = 20
    hard_negatives: bool = True
    seed: int = 0

    @property
    def split(self) -> SplitOptions:
        return SplitOptions(
            valid_from=self.valid_from,
            test_from=self.test_from,
            exclude_from=self.exclude_from,
            exclude_to=self.exclude_to,
        )


@dataclass
class DataSummary:
    """What :func:`build_ubuntu_data` read and wrote."""

    out_dir: Path
    dialogues: dict[str, int]  # per source
    split: dict[str, int]  # dialogues per split
    excluded: int  # training dialogues dated in the exclusion window
    train_pairs: int  # pairs from the training dialogues
    hard_negatives: int  # label-0 rows written for them
    official_pairs: int  # rows of the official training-layout samples
    eval_rows: dict[str, int]
    responses: int  # in the repository file
    adapter_pairs: int  # raw training pairs for the context adapter (pairs.raw.jsonl)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["out_dir"] = str(self.out_dir)
        return out


def read_ubuntu_dialogues(
    shared: Path, bad: BadRowCounter | None = None
) -> dict[str, list[Dialogue]]:
    """Dialogues of every raw Ubuntu source in ``shared``, by source name.

    A missing source is skipped with a warning; the IRC archive is required.
    """
    out: dict[str, list[Dialogue]] = {}
    for name in RAW_SOURCES:
        source = SOURCES[name]
        path = source.path_in(shared)
        if path is None or not path.exists():
            if name == RAW_SOURCES[0]:
                raise FileNotFoundError(f"{path}: the {source.about} is required")
            log.warning("%s: not found, source %s skipped", path, name)
            continue
        out[name] = list(source.read(path, bad))
        log.info("%s: %d dialogues", name, len(out[name]))
    return out


def build_ubuntu_data(
    dialogues: dict[str, list[Dialogue]],
    out_dir: Path,
    options: DataOptions | None = None,
    official_train: Sequence[Path] = (),
    normalization: str = "udc",
    repository: RepositoryOptions | None = None,
) -> DataSummary:
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` (UDC v2 layout) into ``out_dir``.

    Args:
        dialogues: raw dialogues by source (see :func:`read_ubuntu_dialogues`).
        out_dir: created if missing.
        options: split dates and seed.
        official_train: already-normalised UDC v2 training-layout files whose rows are added
            to the training pairs unchanged (negatives included; softmax training skips them).
        normalization: the :class:`~chatbot.text.Normalizer` mode.
        repository: which training turns go into ``responses.jsonl``, the repository the
            bot answers from (:mod:`training.repository`).

    Returns:
        Counts of what was written.
    """
    start = time.monotonic()
    options = options or DataOptions()
    out_dir.mkdir(parents=True, exist_ok=True)
    splits, excluded = split_dialogues((d for ds in dialogues.values() for d in ds), options.split)
    texts = TurnTexts(Normalizer(normalization))
    # The repository first: the pipeline's background job encodes it meanwhile.
    responses = write_repository(
        out_dir / RESPONSES, splits["train"], texts, repository or RepositoryOptions()
    )
    rows = list(dialogue_pairs(splits["train"], texts, options.max_turns))
    n_pairs = len(rows)
    n_negatives = 0
    if options.hard_negatives:
        negatives = hard_negative_rows(splits["train"], texts, options.max_turns)
        rows.extend(negatives)
        n_negatives = len(negatives)
    for path in official_train:
        rows.extend((r.context, r.response, r.label) for r in read_train_rows(path))
    random.Random(f"{options.seed}:ubuntu-train").shuffle(rows)
    # valid.csv and test.csv by the UDC v2 recipe (one row per dialogue, 9 distractors).
    build = BuildOptions(
        normalization, seed=options.seed, positives_only=True, max_turns=options.max_turns
    )
    counts = write_dataset(out_dir, splits, texts, build, train_rows=rows)
    _write_sentences(out_dir / "sentences.txt", splits["train"], texts, official_train)
    adapter_pairs = write_training_pairs(out_dir / PAIRS, splits["train"], options.seed)
    summary = DataSummary(
        out_dir=out_dir,
        dialogues={name: len(ds) for name, ds in dialogues.items()},
        split={name: len(ds) for name, ds in splits.items()},
        excluded=excluded,
        train_pairs=n_pairs,
        hard_negatives=n_negatives,
        official_pairs=len(rows) - n_pairs - n_negatives,
        eval_rows={name: counts[name] for name in ("valid", "test")},
        responses=responses,
        adapter_pairs=adapter_pairs,
        seconds=time.monotonic() - start,
    )
    return summary


def _write_sentences(
    path: Path, dialogues: Iterable[Dialogue], texts: TurnTexts, official_train: Sequence[Path]
) -> None:
    """Every normalised training utterance, one a line: the word-vector corpus."""
    seen: set[str] = set()
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for d in dialogues:
            for turn in d.turns:
                for u in texts.utterances(turn):
                    if u and u not in seen:
                        seen.add(u)
                        f.write(u + "\n")
        for p in official_train:
            for row in read_train_rows(p):
                for u in _utterances(row.context) + _utterances(row.response):
                    if u not in seen:
                        seen.add(u)
                        f.write(u + "\n")
    os.replace(tmp, path)


def _utterances(text: str) -> list[str]:
    """The utterances of a UDC-layout text, markers removed."""
    out: list[str] = []
    words: list[str] = []
    for w in text.split():
        if w in (EOU, EOT):
            if words:
                out.append(" ".join(words))
            words = []
        else:
            words.append(w)
    if words:
        out.append(" ".join(words))
    return out
