"""The bots this project builds: each one a :class:`training.pipeline.Recipe`.

* :func:`chitchat_recipe`: the embedded default (``make run``), from the ``chitchat-dataset``
  package on PyPI, so that it needs no files of ours.
* :func:`ubuntu_recipe`: the Ubuntu support model (``make ubuntu-model``), from the public
  Ubuntu data in the shared data folder (:mod:`training.ubuntu_data`).

Example:
    >>> chitchat_recipe().preset, ubuntu_recipe(Path("shared")).preset
    ('chitchat', 'ubuntu')
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
from pathlib import Path
from typing import Any

from chatbot.config import ModelConfig
from training.build import BuildOptions, TurnTexts, split_dialogues, write_dataset
from training.errors import BadRowCounter
from training.pairs import dialogue_pairs, hard_negative_rows, pair_positions
from training.pipeline import Recipe, TestSet
from training.repository import RepositoryOptions, write_repository
from training.sources.registry import SOURCES
from training.ubuntu_data import (
    OFFICIAL_TEST,
    OFFICIAL_TRAIN,
    OFFICIAL_VALID,
    RESPONSES,
    DataOptions,
    build_ubuntu_data,
    read_ubuntu_dialogues,
)

# Chitchat has no helper and no asker: both sides' turns can be replies.
log = logging.getLogger(__name__)

CHITCHAT_REPOSITORY = RepositoryOptions(answers_only=False, drop_commands=False)


def chitchat_recipe(
    examples: int = 60_000,
    preset: str = "chitchat",
    repository: RepositoryOptions = CHITCHAT_REPOSITORY,
    max_dialogues: int | None = None,
) -> Recipe:
    """The default bot: up to ``examples`` training pairs from the chitchat conversations
    (every (context, next turn) pair of the training conversations, as for the Ubuntu model,
    with hard negatives for the softmax loss), and a repository of the training
    conversations' turns, as people wrote them."""

    def build_data(data: Path, config: ModelConfig, seed: int) -> dict[str, Any]:
        from chatbot.text import Normalizer

        dialogues = list(itertools.islice(SOURCES["chitchat"].read(None), max_dialogues))
        options = BuildOptions(normalization=config.normalization, seed=seed, positives_only=True)
        splits, excluded = split_dialogues(dialogues, options.split)
        texts = TurnTexts(Normalizer(options.normalization))
        train = splits["train"]
        # The repository first: the pipeline's background job encodes it meanwhile.
        responses = write_repository(data / RESPONSES, train, texts, repository)
        positions = pair_positions(train)
        rng = random.Random(f"{seed}:chitchat-train")
        if len(positions) > examples:
            positions = rng.sample(positions, examples)
        pairs = list(dialogue_pairs(train, texts, options.max_turns, positions))
        negatives = hard_negative_rows(train, texts, options.max_turns, positions)
        rows = pairs + negatives
        rng.shuffle(rows)
        counts = write_dataset(data, splits, texts, options, train_rows=rows)
        return {
            "dialogues": {name: len(ds) for name, ds in splits.items()},
            "excluded": excluded,
            "rows": counts,
            "train_pairs": len(pairs),
            "hard_negatives": len(negatives),
            "responses": responses,
        }

    return Recipe(
        name=preset,
        preset=preset,
        build_data=build_data,
        valid_sets=lambda data: {"valid": data / "valid.csv"},
        test_sets=lambda data: [TestSet("test", data / "test.csv", "eval")],
        responses=RESPONSES,
    )


def ubuntu_recipe(
    shared: Path,
    data_options: DataOptions | None = None,
    preset: str = "ubuntu",
    repository: RepositoryOptions | None = None,
) -> Recipe:
    """The Ubuntu support model from the shared data folder ``shared``: trained on the IRC
    logs, raw UDC dialogues and official training samples; tuned on held-out and official
    validation rows; tested on held-out rows and the official ``first100/test.csv`` (never
    used for tuning)."""
    base = data_options or DataOptions()

    def build_data(data: Path, config: ModelConfig, seed: int) -> dict[str, Any]:
        if not shared.is_dir():
            raise FileNotFoundError(f"{shared}: no shared data folder (give --shared-data)")
        official = [shared / p for p in OFFICIAL_TRAIN if (shared / p).is_file()]
        # Public chat logs hold a few malformed lines (a nick with a space, a stray tab):
        # they are skipped, counted and named in the summary, never silently.
        bad = BadRowCounter(skip=True)
        dialogues = read_ubuntu_dialogues(shared, bad)
        if bad.count:
            log.warning("skipped %d malformed log lines, e.g. %s", bad.count, bad.examples[0])
        summary = build_ubuntu_data(
            dialogues,
            data,
            dataclasses.replace(base, seed=seed),
            official_train=official,
            normalization=config.normalization,
            repository=repository,
        )
        return {**summary.to_dict(), "skipped_lines": bad.count, "skipped_examples": bad.examples}

    return Recipe(
        name="ubuntu",
        preset=preset,
        build_data=build_data,
        valid_sets=lambda data: {
            "own_valid": data / "valid.csv",
            "first100_valid": shared / OFFICIAL_VALID,
        },
        test_sets=lambda data: [
            TestSet("own_test", data / "test.csv", "eval_own_test"),
            TestSet("first100_test", shared / OFFICIAL_TEST, "eval_first100_test"),
        ],
        responses=RESPONSES,
        word_vectors=True,
        context_adapter=True,
    )
