"""The Ubuntu support model: UDC v2-style data from the public Ubuntu sources, trained end to end.

Pipeline (:func:`run_pipeline`, the ``chatbot ubuntu-model`` command):

1. **Data** (:func:`build_ubuntu_data`). Dialogues from the #ubuntu IRC logs and the raw UDC
   dialogues (Kaggle and liuzqt CSVs, Pimlico JSON) are normalised with the official UDC v2
   recipe (``Normalizer("udc")``) and split by time with :func:`training.build.split_dialogues`:
   training dialogues dated inside the official UDC validation/test period are left out, and the
   latest dialogues (``valid_from``/``test_from``) become held-out 1-in-10 rows
   (``valid.csv``/``test.csv``, written by :func:`training.build.build_dataset`). ``train.csv``
   holds **every** (context, next turn) pair of the training dialogues (the data is small, so
   sampling one context length per dialogue as the UDC generator does would waste most of it),
   plus the official UDC v2 training-layout sample files, shuffled with the seed.
2. **Word vectors** (:func:`word_vectors`): word2vec (gensim) on every training utterance,
   used to initialise the embedding table.
3. **Training** with the ``ubuntu`` preset (:mod:`training.presets`), early-stopped on the
   held-out validation rows.
4. **Hybrid score**: a TF-IDF model (:class:`chatbot.lexical.TfidfModel`) fitted on the training
   texts is added to the neural score with a weight chosen on the validation rows (own held-out
   rows and the official ``first100/valid.csv``), and saved in the artifact.
5. **Index and evaluation**: the response index of the training responses, and recall@k on the
   own held-out test rows and the official ``first100/test.csv`` (never used for tuning).

Example:
    >>> report = run_pipeline(UbuntuOptions(Path("shared"), Path("out")))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.text import EOT, EOU, Normalizer, join_turns, join_utterances
from training.build import (
    TRAIN_HEADER,
    BuildOptions,
    SplitOptions,
    build_dataset,
    split_dialogues,
    write_csv,
)
from training.dialogue import Dialogue, Turn
from training.errors import BadRowCounter
from training.hybrid import add_lexical
from training.sources.udc_csv import read_eval_rows, read_train_rows

log = logging.getLogger(__name__)


# Inputs, relative to the shared data folder.
IRC_ARCHIVE = "ubuntu_irc/irc_disentangle_ubuntu_train_dev_test.tar.gz"
KAGGLE_CSV = "udc/raw_dialogs/kaggle_dialogueText_first9999.csv"
LIUZQT_CSV = "udc/raw_dialogs/liuzqt_raw_dialogs_50.csv"
PIMLICO_JSON = "udc/raw_dialogs/pimlico_dialogues_small.json"
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
        seed: seeds distractors and the order of the training pairs.
    """

    valid_from: dt.date = dt.date(2015, 1, 1)
    test_from: dt.date = dt.date(2016, 1, 1)
    exclude_from: dt.date = OFFICIAL_EVAL_FROM
    exclude_to: dt.date = OFFICIAL_EVAL_TO
    max_turns: int = 20
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
    official_pairs: int  # rows of the official training-layout samples
    eval_rows: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["out_dir"] = str(self.out_dir)
        return out


def _renamed(dialogues: Iterable[Dialogue], source: str) -> Iterator[Dialogue]:
    """The dialogues with their ids prefixed by the source name (ids stay unique overall)."""
    for d in dialogues:
        yield Dialogue(f"{source}/{d.id}", d.date, d.turns)


def read_ubuntu_dialogues(
    shared: Path, bad: BadRowCounter | None = None
) -> dict[str, list[Dialogue]]:
    """Dialogues of every raw Ubuntu source in ``shared``, by source name.

    A missing source is skipped with a warning (the IRC archive is required).
    """
    from training.sources.irc import read_irc
    from training.sources.raw_udc import read_pimlico_json, read_udc_csv

    sources = {
        "irc": (read_irc, IRC_ARCHIVE),
        "kaggle": (read_udc_csv, KAGGLE_CSV),
        "liuzqt": (read_udc_csv, LIUZQT_CSV),
        "pimlico": (read_pimlico_json, PIMLICO_JSON),
    }
    out: dict[str, list[Dialogue]] = {}
    for name, (reader, rel) in sources.items():
        path = shared / rel
        if not path.exists():
            if name == "irc":
                raise FileNotFoundError(f"{path}: the #ubuntu IRC archive is required")
            log.warning("%s: not found, source %s skipped", path, name)
            continue
        out[name] = list(_renamed(reader(path, bad), name))  # type: ignore[operator]
        log.info("%s: %d dialogues", name, len(out[name]))
    return out


class TurnTexts:
    """Normalised turns in UDC layout, each distinct turn normalised once."""

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer
        self._cache: dict[Turn, tuple[str, ...]] = {}

    def utterances(self, turn: Turn) -> tuple[str, ...]:
        cached = self._cache.get(turn)
        if cached is None:
            cached = self._cache[turn] = tuple(map(self.normalizer.normalize, turn))
        return cached

    def context(self, turns: Sequence[Turn]) -> str:
        return join_turns(self.utterances(t) for t in turns)

    def response(self, turn: Turn) -> str:
        return join_utterances(self.utterances(turn))


def dialogue_pairs(
    dialogues: Iterable[Dialogue], texts: TurnTexts, max_turns: int
) -> Iterator[tuple[str, str, int]]:
    """Every (context, next turn, 1) pair of the dialogues: turn k (k >= 2) answers the up to
    ``max_turns`` turns before it.

    Example:
        >>> d = Dialogue("d", None, (("a",), ("b",), ("c",), ("d",)))
        >>> [r for _, r, _ in dialogue_pairs([d], TurnTexts(Normalizer("none")), 20)]
        ['c __eou__', 'd __eou__']
    """
    for d in dialogues:
        for k in range(2, d.n_turns):
            context = texts.context(d.turns[max(0, k - max_turns) : k])
            yield context, texts.response(d.turns[k]), 1


def build_ubuntu_data(
    dialogues: dict[str, list[Dialogue]],
    out_dir: Path,
    options: DataOptions | None = None,
    official_train: Sequence[Path] = (),
    normalization: str = "udc",
) -> DataSummary:
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` (UDC v2 layout) into ``out_dir``.

    Args:
        dialogues: raw dialogues by source (see :func:`read_ubuntu_dialogues`).
        out_dir: created if missing.
        options: split dates and seed.
        official_train: already-normalised UDC v2 training-layout files whose rows are added
            to the training pairs unchanged (negatives included; softmax training skips them).
        normalization: the :class:`~chatbot.text.Normalizer` mode.

    Returns:
        Counts of what was written.
    """
    start = time.monotonic()
    options = options or DataOptions()
    out_dir.mkdir(parents=True, exist_ok=True)
    everything = [d for ds in dialogues.values() for d in ds]
    # valid.csv and test.csv by the UDC v2 recipe (one row per dialogue, 9 distractors);
    # train.csv is replaced below by every pair of the training dialogues.
    build = build_dataset(
        everything,
        out_dir,
        BuildOptions(
            normalization,
            seed=options.seed,
            examples=0,
            positives_only=True,
            max_turns=options.max_turns,
            split=options.split,
        ),
    )
    splits, excluded = split_dialogues(everything, options.split)
    texts = TurnTexts(Normalizer(normalization))
    rows: list[tuple[str, str, int]] = list(
        dialogue_pairs(splits["train"], texts, options.max_turns)
    )
    n_pairs = len(rows)
    for path in official_train:
        rows.extend((r.context, r.response, r.label) for r in read_train_rows(path))
    random.Random(f"{options.seed}:ubuntu-train").shuffle(rows)
    write_csv(out_dir / "train.csv.part", TRAIN_HEADER, rows, len(rows))
    os.replace(out_dir / "train.csv.part", out_dir / "train.csv")
    _write_sentences(out_dir / "sentences.txt", splits["train"], texts, official_train)
    summary = DataSummary(
        out_dir=out_dir,
        dialogues={name: len(ds) for name, ds in dialogues.items()},
        split={name: len(ds) for name, ds in splits.items()},
        excluded=excluded,
        train_pairs=n_pairs,
        official_pairs=len(rows) - n_pairs,
        eval_rows=build.eval_rows,
        seconds=time.monotonic() - start,
    )
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
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


def word_vectors(
    sentences: Path,
    words: Sequence[str],
    dim: int,
    seed: int = 0,
    epochs: int = 5,
    scale: float = 0.1,
) -> tuple[np.ndarray, int]:
    """An embedding table initialised from word2vec (skip-gram) trained on ``sentences``.

    Args:
        sentences: one normalised sentence a line.
        words: the model's vocabulary, in id order (``<pad>`` first).
        dim: vector size (the model's ``embedding_dim``).
        seed: seeds word2vec and the vectors of words it does not know.
        epochs: passes over the sentences.
        scale: the standard deviation the word2vec vectors are rescaled to (Keras' own
            initialisation, uniform in +-0.05, has 0.029).

    Returns:
        The ``(len(words), dim)`` float32 table (padding row zero) and how many words got a
        word2vec vector.
    """
    from gensim.models import Word2Vec  # optional dependency, heavy import

    with open(sentences, encoding="utf-8") as f:
        corpus = [line.split() for line in f if line.strip()]
    model = Word2Vec(
        corpus,
        vector_size=dim,
        window=5,
        min_count=2,
        sg=1,
        negative=5,
        workers=2,
        epochs=epochs,
        seed=seed,
    )
    kv = model.wv
    rng = np.random.default_rng(seed)
    table = rng.uniform(-0.05, 0.05, (len(words), dim))
    std = float(np.std(kv.vectors)) or 1.0
    found = 0
    for i, word in enumerate(words):
        if word in kv.key_to_index:
            table[i] = kv[word] * (scale / std)
            found += 1
    table[0] = 0.0
    return table.astype(np.float32), found


@dataclass(frozen=True)
class UbuntuOptions:
    """What ``chatbot ubuntu-model`` does.

    Args:
        shared_data: the shared data folder (see :func:`training.shared_data.shared_data_dir`).
        out: output folder: ``data/``, ``model/`` (+ ``model.work/``), ``index/``, evaluations.
        seed: seeds the data build and training.
        max_steps: overrides the ``ubuntu`` preset's training steps.
        word_vectors: initialise the embeddings with word2vec.
        lexical: tune and save the TF-IDF hybrid score (kept only if its weight is above 0).
        reuse_data: keep ``out/data`` when it was built already.
        data: split dates and context length.
        preset: the training preset (:mod:`training.presets`).
    """

    shared_data: Path
    out: Path
    seed: int = 0
    max_steps: int | None = None
    word_vectors: bool = True
    lexical: bool = True
    reuse_data: bool = False
    data: DataOptions = DataOptions()
    preset: str = "ubuntu"


def run_pipeline(options: UbuntuOptions) -> dict[str, Any]:
    """Builds the data, trains, tunes the hybrid, indexes and evaluates (see the module doc).

    Returns:
        The report also written to ``out/report.json``.
    """
    import shutil

    from training.cli_index import build_index
    from training.dataset import build_vocab
    from training.evaluate import run_evaluation
    from training.presets import PRESETS
    from training.train import train

    start = time.monotonic()
    shared, out = options.shared_data, options.out
    if not shared.is_dir():
        raise FileNotFoundError(f"{shared}: no shared data folder (give --shared-data)")
    data_dir, model_dir = out / "data", out / "model"
    timings: dict[str, float] = {}

    model_config, train_config = PRESETS[options.preset]
    train_config = dataclasses.replace(
        train_config,
        seed=options.seed,
        max_steps=options.max_steps or train_config.max_steps,
    )

    # 1. Data.
    tick = time.monotonic()
    if options.reuse_data and (data_dir / "summary.json").is_file():
        summary = json.loads((data_dir / "summary.json").read_text())
        log.info("reusing the data in %s", data_dir)
    else:
        official = [shared / p for p in OFFICIAL_TRAIN if (shared / p).is_file()]
        built = build_ubuntu_data(
            read_ubuntu_dialogues(shared),
            data_dir,
            dataclasses.replace(options.data, seed=options.seed),
            official_train=official,
            normalization=model_config.normalization,
        )
        summary = built.to_dict()
    timings["data"] = time.monotonic() - tick
    train_csv, valid_csv, test_csv = (data_dir / f"{n}.csv" for n in ("train", "valid", "test"))

    # 2. Word vectors.
    tick = time.monotonic()
    embeddings, found = None, 0
    if options.word_vectors:
        vocab = build_vocab(train_csv, model_config)
        embeddings, found = word_vectors(
            data_dir / "sentences.txt", vocab.words, model_config.embedding_dim, options.seed
        )
        log.info("word2vec vectors for %d of %d words", found, len(vocab))
    timings["word_vectors"] = time.monotonic() - tick

    # 3. Training (a fresh run: the work folder of an earlier one is removed).
    tick = time.monotonic()
    workdir = out / "model.work"
    shutil.rmtree(workdir, ignore_errors=True)
    result = train(
        train_csv,
        valid_csv,
        model_dir,
        model_config,
        train_config,
        workdir=workdir,
        embeddings=embeddings,
        name="ubuntu",
    )
    timings["training"] = time.monotonic() - tick

    # 4. The hybrid weight, on validation rows only (own held-out and official first100/valid).
    tick = time.monotonic()
    tuning: dict[str, Any] = {"lexical_weight": 0.0}
    if options.lexical:
        valid_sets = {"own_valid": valid_csv, "first100_valid": shared / OFFICIAL_VALID}
        tuning = add_lexical(model_dir, train_csv, valid_sets, name="ubuntu")
    timings["hybrid"] = time.monotonic() - tick

    # 5. Response index and evaluation (the official test rows are only ever evaluated here).
    tick = time.monotonic()
    n_index = build_index(model_dir, train_csv, out / "index")
    timings["index"] = time.monotonic() - tick
    tick = time.monotonic()
    from chatbot.artifact import load_encoder

    encoder = load_encoder(model_dir)
    evaluation = {}
    for name, path in {"own_test": test_csv, "first100_test": shared / OFFICIAL_TEST}.items():
        if path.is_file():
            evaluation[name] = run_evaluation(
                list(read_eval_rows(path)),
                encoder,
                ["tfidf", "random"],
                out / f"eval_{name}.json",
                plot_path=out / f"eval_{name}.png",
                progress=False,
            )
    timings["evaluation"] = time.monotonic() - tick

    report = {
        "data": summary,
        "word_vectors": {"used": options.word_vectors, "words_found": found},
        "training": {
            "steps": result.steps,
            "best_step": result.best_step,
            "valid_recall@1": result.best_recall_at_1,
            "stopped_early": result.stopped_early,
        },
        "hybrid": tuning,
        "index_responses": n_index,
        "evaluation": evaluation,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(time.monotonic() - start, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
