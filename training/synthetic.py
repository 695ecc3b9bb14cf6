"""Generated UDC v2-layout files: the shape of the real corpus, with no real text.

Used by tests (a model can learn them: a true response shares a topic with its context)
and by benchmarks (the full UDC train.csv is 1,000,000 rows; this writes one of that shape
without the corpus). Lengths follow the UDC v2 figures: contexts average about 86 tokens
over 2-20 turns, responses about 17.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from chatbot.text import EOT, EOU
from training.sources.udc_csv import EVAL_HEADER, N_DISTRACTORS, TRAIN_HEADER, write_csv

N_TOPICS = 40
_FILLER = [f"w{i}" for i in range(400)]
_TOPIC_WORDS = [[f"t{t}x{j}" for j in range(6)] for t in range(N_TOPICS)]


def _utterance(rng: random.Random, topic: int, length: int) -> str:
    words = [
        rng.choice(_TOPIC_WORDS[topic]) if rng.random() < 0.5 else rng.choice(_FILLER)
        for _ in range(length)
    ]
    return " ".join(words)


def _context(rng: random.Random, topic: int) -> str:
    turns = rng.randint(2, 8)
    parts = []
    for _ in range(turns):
        length = max(1, int(rng.expovariate(1 / 10)))
        parts.append(f"{_utterance(rng, topic, length)} {EOU} {EOT}")
    return " ".join(parts)


def _response(rng: random.Random, topic: int) -> str:
    return f"{_utterance(rng, topic, max(1, int(rng.expovariate(1 / 16))))} {EOU}"


def train_rows(n: int, seed: int) -> Iterator[tuple[str, str, int]]:
    """``n`` rows ``(context, response, label)``, half of them true pairs."""
    rng = random.Random(seed)
    for _ in range(n):
        topic = rng.randrange(N_TOPICS)
        label = rng.random() < 0.5
        response_topic = topic if label else rng.randrange(N_TOPICS)
        yield _context(rng, topic), _response(rng, response_topic), int(label)


def eval_rows(n: int, seed: int) -> Iterator[list[str]]:
    """``n`` rows: context, true response, 9 distractors on other topics."""
    rng = random.Random(seed)
    for _ in range(n):
        topic = rng.randrange(N_TOPICS)
        others = rng.sample([t for t in range(N_TOPICS) if t != topic], N_DISTRACTORS)
        yield [_context(rng, topic), _response(rng, topic), *(_response(rng, t) for t in others)]


def write_synthetic_udc(
    folder: Path, n_train: int, n_valid: int, n_test: int, seed: int = 0, progress: bool = False
) -> Path:
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` in UDC v2 layout to ``folder``.

    Example:
        >>> import tempfile
        >>> folder = write_synthetic_udc(Path(tempfile.mkdtemp()), 4, 2, 2)
        >>> sorted(p.name for p in folder.iterdir())
        ['test.csv', 'train.csv', 'valid.csv']
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "train.csv", TRAIN_HEADER, train_rows(n_train, seed), n_train, progress)
    write_csv(folder / "valid.csv", EVAL_HEADER, eval_rows(n_valid, seed + 1), progress=False)
    write_csv(folder / "test.csv", EVAL_HEADER, eval_rows(n_test, seed + 2), progress=False)
    return folder
