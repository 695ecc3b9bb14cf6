"""Builds UDC v2 layout files from raw dialogues, following the official UDC v2 generator.

Output, in ``out_dir``:

* ``train.csv``: ``Context,Utterance,Label``. Each example takes a dialogue, a context of
  2..min(max_turns, n_turns - 1) turns drawn uniformly, and as response either the true next
  turn (label 1) or, with probability 0.5, a random turn (index >= 2) of another random
  training dialogue (label 0). Dialogues are cycled over, reshuffled each pass.
* ``valid.csv``/``test.csv``: ``Context,Ground Truth Utterance,Distractor_0..Distractor_8``, one
  row per dialogue, the distractors being random turns of other dialogues of the same split.

Dialogues are split by time (sorted by date, ties by id; undated ones go to training), so the
model is evaluated on conversations later than those it learnt from. Text is normalised with
:class:`chatbot.text.Normalizer` and laid out with ``__eou__``/``__eot__`` markers. The same seed
gives byte-identical files, and the files appear only once all three are complete.

Example::

    build_dataset(read_chitchat(), "data/chitchat", BuildOptions("tokenize"))
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from chatbot.text import Normalizer, join_turns, join_utterances
from training.dialogue import Dialogue, Turn
from training.errors import BadRowCounter
from training.raw_text import RawText, raw_text_path, write_raw_text
from training.sources.udc_csv import EVAL_HEADER, N_DISTRACTORS, TRAIN_HEADER, write_csv

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
MIN_CONTEXT_TURNS = 2
_REDRAWS = 10  # tries to find a distractor whose text differs from the true response


@dataclass(frozen=True)
class SplitOptions:
    """How dialogues are split by time.

    Either fractions of the time-sorted dialogues (the latest go to test), or cut-off dates:
    train < ``valid_from`` <= valid < ``test_from`` <= test. Training dialogues dated in
    [``exclude_from``, ``exclude_to``) are left out (e.g. the official UDC valid/test period
    2012-04-27..2012-12-01, when evaluating on the official rows).
    """

    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    valid_from: dt.date | None = None
    test_from: dt.date | None = None
    exclude_from: dt.date | None = None
    exclude_to: dt.date | None = None

    def __post_init__(self) -> None:
        if (self.valid_from is None) != (self.test_from is None):
            raise ValueError("give both valid_from and test_from, or neither")
        if self.valid_from and self.test_from and self.valid_from > self.test_from:
            raise ValueError("valid_from must not be after test_from")
        if (self.exclude_from is None) != (self.exclude_to is None):
            raise ValueError("give both exclude_from and exclude_to, or neither")
        fractions = (self.valid_fraction, self.test_fraction)
        if min(fractions) < 0 or sum(fractions) >= 1:
            raise ValueError("valid and test fractions must be >= 0 and sum to less than 1")


@dataclass(frozen=True)
class BuildOptions:
    """What to build.

    Args:
        normalization: :class:`~chatbot.text.Normalizer` mode (``udc``, ``tokenize``, ``none``).
        seed: seeds every random choice; the same seed gives byte-identical files.
        examples: training pairs to write; ``None`` writes one per training dialogue.
        positives_only: every training pair is a true one (label 1), for in-batch negatives.
        max_turns: most context turns.
        split: how dialogues are split by time.
    """

    normalization: str = "udc"
    seed: int = 0
    examples: int | None = None
    positives_only: bool = False
    max_turns: int = 20
    split: SplitOptions = field(default_factory=SplitOptions)


@dataclass
class BuildSummary:
    """What a build read and wrote."""

    out_dir: Path
    dialogues: dict[str, int]  # per split
    excluded: int  # training dialogues left out by the exclusion window
    train_pairs: int
    eval_rows: dict[str, int]  # per evaluation split
    skipped_rows: int  # bad input rows skipped under --skip-bad-rows
    seconds: float

    def __str__(self) -> str:
        splits = ", ".join(f"{k} {v:,}" for k, v in self.dialogues.items())
        evals = ", ".join(f"{k} {v:,}" for k, v in self.eval_rows.items())
        return (
            f"dialogues: {splits} (excluded from train: {self.excluded:,})\n"
            f"training pairs: {self.train_pairs:,}\n"
            f"evaluation rows: {evals}\n"
            f"skipped bad rows: {self.skipped_rows:,}\n"
            f"written to {self.out_dir} in {self.seconds:.1f} s"
        )


def build_dataset(
    dialogues: Iterable[Dialogue],
    out_dir: str | Path,
    options: BuildOptions | None = None,
    bad: BadRowCounter | None = None,
) -> BuildSummary:
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` of UDC v2 layout into ``out_dir``.

    Args:
        dialogues: raw dialogues, e.g. from :mod:`training.sources`; read once, held in memory.
        out_dir: created if missing; existing files of the same names are replaced.
        options: what to build; defaults to :class:`BuildOptions` ``()``.
        bad: the counter the reader skipped bad rows with, for the summary.

    Returns:
        Counts of dialogues, pairs and rows.

    Example::

        print(build_dataset(read_irc(archive), "data/irc"))
    """
    start = time.monotonic()
    options = options or BuildOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = list(tqdm(dialogues, desc="reading dialogues", unit=" dialogues", disable=None))
    log.info("read %d dialogues (%d bad rows skipped)", len(read), bad.count if bad else 0)
    splits, excluded = split_dialogues(read, options.split)
    log.info("split: %s; %d excluded", {k: len(v) for k, v in splits.items()}, excluded)
    texts = TurnTexts(Normalizer(options.normalization))
    rows = write_dataset(out, splits, texts, options)
    return BuildSummary(
        out_dir=out,
        dialogues={k: len(v) for k, v in splits.items()},
        excluded=excluded,
        train_pairs=rows["train"],
        eval_rows={k: rows[k] for k in SPLITS[1:]},
        skipped_rows=bad.count if bad else 0,
        seconds=time.monotonic() - start,
    )


def split_dialogues(
    dialogues: Iterable[Dialogue], options: SplitOptions
) -> tuple[dict[str, list[Dialogue]], int]:
    """Dialogues split by time into ``train``/``valid``/``test``, each in time order.

    Returns:
        The splits, and how many training dialogues the exclusion window removed.

    Example:
        >>> split_dialogues([], SplitOptions())
        ({'train': [], 'valid': [], 'test': []}, 0)
    """
    ordered = sorted(dialogues, key=lambda d: (d.date is not None, d.date or dt.date.min, d.id))
    if options.valid_from and options.test_from:
        splits = _split_by_dates(ordered, options.valid_from, options.test_from)
    else:
        splits = _split_by_fractions(ordered, options.valid_fraction, options.test_fraction)
    if options.exclude_from and options.exclude_to:
        lo, hi = options.exclude_from, options.exclude_to
        kept = [d for d in splits["train"] if d.date is None or not lo <= d.date < hi]
        excluded = len(splits["train"]) - len(kept)
        splits["train"] = kept
        return splits, excluded
    return splits, 0


def _split_by_dates(
    ordered: list[Dialogue], valid_from: dt.date, test_from: dt.date
) -> dict[str, list[Dialogue]]:
    splits: dict[str, list[Dialogue]] = {name: [] for name in SPLITS}
    for d in ordered:
        name = "train" if d.date is None or d.date < valid_from else "valid"
        splits["test" if d.date and d.date >= test_from else name].append(d)
    return splits


def _split_by_fractions(
    ordered: list[Dialogue], valid_fraction: float, test_fraction: float
) -> dict[str, list[Dialogue]]:
    # Undated dialogues sort first, so the latest ones are dated; never cut into undated ones.
    n, dated = len(ordered), sum(d.date is not None for d in ordered)
    n_test = min(round(n * test_fraction), dated)
    n_valid = min(round(n * valid_fraction), dated - n_test)
    cut_valid, cut_test = n - n_test - n_valid, n - n_test
    return {
        "train": ordered[:cut_valid],
        "valid": ordered[cut_valid:cut_test],
        "test": ordered[cut_test:],
    }


class TurnTexts:
    """Normalised turns in UDC layout; each distinct turn is normalised once.

    Example:
        >>> texts = TurnTexts(Normalizer("none"))
        >>> texts.context([("hi",), ("hello", "there")])
        'hi __eou__ __eot__ hello __eou__ there __eou__ __eot__'
    """

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer
        self._cache: dict[Turn, tuple[str, ...]] = {}
        # A turn recurs in every later context of its dialogue: joined once too.
        self._joined: dict[Turn, str] = {}

    def utterances(self, turn: Turn) -> tuple[str, ...]:
        cached = self._cache.get(turn)
        if cached is None:
            cached = self._cache[turn] = tuple(map(self.normalizer.normalize, turn))
        return cached

    def _context_turn(self, turn: Turn) -> str:
        joined = self._joined.get(turn)
        if joined is None:
            joined = self._joined[turn] = join_turns([self.utterances(turn)])
        return joined

    def context(self, turns: Sequence[Turn]) -> str:
        return " ".join(map(self._context_turn, turns))

    def response(self, turn: Turn) -> str:
        return join_utterances(self.utterances(turn))


def write_dataset(
    out: Path,
    splits: dict[str, list[Dialogue]],
    texts: TurnTexts,
    options: BuildOptions,
    train_rows: Sequence[tuple[str, str, int]] | None = None,
) -> dict[str, int]:
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` for already split dialogues, and
    beside the last two their rows' raw text (:mod:`training.raw_text`).

    The files are written as ``.part`` files and renamed only once all are complete.

    Args:
        out: the output folder (it must exist).
        splits: dialogues by split name (see :func:`split_dialogues`).
        texts: normalises turns.
        options: what to build.
        train_rows: the training pairs to write instead of sampling them from
            ``splits["train"]`` by the UDC v2 recipe.

    Returns:
        Rows written per split.
    """
    train = splits["train"]
    if train_rows is None:
        n_examples = len(train) if options.examples is None else options.examples
        if n_examples and len(train) < 2 and not options.positives_only:
            raise ValueError("negative training pairs need at least 2 training dialogues")
        train_rows = list(_training_rows(train, n_examples, texts, options))
    tables: dict[str, tuple[Sequence[str], Iterable[Sequence[object]]]] = {
        "train": (TRAIN_HEADER, train_rows)
    }
    raw: dict[str, list[RawText]] = {name: [] for name in SPLITS[1:]}
    for name, kept in raw.items():
        tables[name] = (EVAL_HEADER, _evaluation_rows(splits[name], texts, options, name, kept))
        # Never a sidecar beside a CSV it was not written with, should this build stop halfway.
        raw_text_path(out / f"{name}.csv").unlink(missing_ok=True)
    totals = {"train": len(train_rows), "valid": len(splits["valid"]), "test": len(splits["test"])}
    files = {name: out / f"{name}.csv" for name in tables}
    files |= {f"{name}.raw": raw_text_path(out / f"{name}.csv") for name in raw}
    counts = {}
    try:
        for name, (header, rows) in tables.items():
            counts[name] = write_csv(_part(files[name]), header, rows, totals[name])
        for name, kept in raw.items():  # filled as the CSV above was written
            write_raw_text(_part(files[f"{name}.raw"]), kept)
        for path in files.values():
            os.replace(_part(path), path)
        for name in tables:
            log.info("wrote %s (%d rows)", files[name], counts[name])
    finally:
        for path in files.values():
            _part(path).unlink(missing_ok=True)
    return counts


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _training_rows(
    dialogues: list[Dialogue], n_examples: int, texts: TurnTexts, options: BuildOptions
) -> Iterator[tuple[str, str, int]]:
    rng = random.Random(f"{options.seed}:train")  # str seeds are hashed stably (SHA-512)
    order: list[int] = []
    for _ in range(n_examples):
        if not order:  # a new pass over the dialogues, in a fresh random order
            order = rng.sample(range(len(dialogues)), len(dialogues))
        i = order.pop()
        k = _context_length(rng, dialogues[i], options.max_turns)
        context, truth = (
            texts.context(dialogues[i].turns[:k]),
            texts.response(dialogues[i].turns[k]),
        )
        if options.positives_only or rng.random() < 0.5:
            yield context, truth, 1
        else:
            yield context, texts.response(_distractor(rng, dialogues, i, texts, {truth})), 0


def _evaluation_rows(
    dialogues: list[Dialogue],
    texts: TurnTexts,
    options: BuildOptions,
    split: str,
    raw: list[RawText],
) -> Iterator[list[str]]:
    """The split's rows, normalised; each row's raw text is appended to ``raw``."""
    if len(dialogues) < 2:
        log.warning("%s: %d dialogue(s), too few for distractors; no rows", split, len(dialogues))
        return
    rng = random.Random(f"{options.seed}:{split}")
    for i, dialogue in enumerate(dialogues):
        k = _context_length(rng, dialogue, options.max_turns)
        truth = texts.response(dialogue.turns[k])
        distractors: list[str] = []
        raw_distractors: list[str] = []
        for _ in range(N_DISTRACTORS):
            turn = _distractor(rng, dialogues, i, texts, {truth, *distractors})
            distractors.append(texts.response(turn))
            raw_distractors.append(raw_turn(turn))
        turns = tuple(raw_turn(t) for t in dialogue.turns[:k])
        raw.append(RawText(turns, (raw_turn(dialogue.turns[k]), *raw_distractors)))
        yield [texts.context(dialogue.turns[:k]), truth, *distractors]


def raw_turn(turn: Turn) -> str:
    """A turn as one message, as a user would send it: its utterances, joined by spaces.

    Example:
        >>> raw_turn(("It fails.", "Any idea?"))
        'It fails. Any idea?'
    """
    return " ".join(u.strip() for u in turn if u.strip())


def _context_length(rng: random.Random, dialogue: Dialogue, max_turns: int) -> int:
    """Context turns, uniform in 2..min(max_turns, n_turns - 1); the next turn is the response."""
    return rng.randint(
        MIN_CONTEXT_TURNS, max(MIN_CONTEXT_TURNS, min(max_turns, dialogue.n_turns - 1))
    )


def _distractor(
    rng: random.Random, dialogues: list[Dialogue], exclude: int, texts: TurnTexts, avoid: set[str]
) -> Turn:
    """A random turn (index >= 2) of a random dialogue other than ``dialogues[exclude]``.

    Redraws a few times while its normalised text is in ``avoid`` (the true response, say
    "thanks"), so a negative is rarely word-for-word the positive.
    """
    for _ in range(_REDRAWS):
        j = rng.randrange(len(dialogues) - 1)
        other = dialogues[j + (j >= exclude)]
        turn = other.turns[rng.randint(2, other.n_turns - 1)]
        if texts.response(turn) not in avoid:
            break
    return turn
