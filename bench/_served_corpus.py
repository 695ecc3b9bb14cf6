"""The repository the served-path benchmarks rank: real utterances, grown to any size.

Lexical retrieval costs depend on the words: how many responses share a common word, how
long texts are. Random text gets that wrong, so the benchmarks start from the distinct
normalised utterances of a UDC-layout CSV (``artifacts/ubuntu/data/train.csv``, written by
``make ubuntu-model``) and grow them to ``n`` with variants: each variant drops one word of
its base text and adds one drawn from the whole corpus by frequency, so word frequencies keep
their shape. Without that CSV (a fresh checkout) a generated Zipf-distributed vocabulary
stands in, and the benchmark says so.

Queries are the CSV's normalised contexts (those of ``test.csv`` beside it when present).

Example:
    >>> corpus = served_corpus(50, None, n_queries=3, seed=0)
    >>> len(corpus.texts), len(set(corpus.texts)), len(corpus.queries), corpus.source
    (50, 50, 3, 'generated Zipf text (no CSV given)')
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CSV = Path("artifacts/ubuntu/data/train.csv")
EOU = "__eou__"


def _csv_column(path: Path, column: str, limit: int | None = None) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    out: list[str] = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append(row[column])
            if limit is not None and len(out) >= limit:
                break
    return out


def _zipf_texts(n: int, rng: np.random.Generator) -> list[str]:
    words = np.array([f"w{i}" for i in range(30_000)])
    lengths = rng.integers(3, 25, size=n)
    draws = np.minimum(rng.zipf(1.2, size=int(lengths.sum())) - 1, len(words) - 1)
    out, at = [], 0
    for length in lengths:
        out.append(" ".join(words[draws[at : at + length]]) + f" {EOU}")
        at += length
    return out


def _grow(base: list[str], n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """``base`` (deduplicated) plus variants up to ``n`` distinct texts, and for each text the
    position of the base text it came from."""
    base = list(dict.fromkeys(base))
    texts = base[:n]
    origins = list(range(len(texts)))
    seen = set(texts)
    pool = [w for t in texts for w in t.split() if w != EOU]  # words, by frequency
    while len(texts) < n:
        for i in rng.integers(0, len(base), size=n - len(texts)):
            words = [w for w in base[i].split() if w != EOU]
            if words:
                del words[rng.integers(len(words))]
            words.insert(int(rng.integers(len(words) + 1)), pool[rng.integers(len(pool))])
            variant = " ".join(words) + f" {EOU}"
            if variant not in seen:
                seen.add(variant)
                texts.append(variant)
                origins.append(int(i))
    return texts[:n], np.array(origins[:n])


@dataclass(frozen=True)
class Corpus:
    """Response texts, for each the position of the base text it varies, and queries."""

    texts: list[str]
    origins: np.ndarray
    queries: list[str]
    source: str


def served_corpus(
    n: int, csv_path: Path | None = DEFAULT_CSV, n_queries: int = 200, seed: int = 0
) -> Corpus:
    """``n`` distinct normalised response texts and ``n_queries`` normalised contexts."""
    rng = np.random.default_rng(seed)
    if csv_path is None or not csv_path.is_file():
        texts, origins = _grow(_zipf_texts(n, rng), n, rng)
        queries = [" ".join(t.split()[:-1] * 3) + f" {EOU}" for t in _zipf_texts(n_queries, rng)]
        why = "no CSV given" if csv_path is None else f"{csv_path} not found"
        return Corpus(texts, origins, queries, f"generated Zipf text ({why})")
    texts, origins = _grow(_csv_column(csv_path, "Utterance"), n, rng)
    test = csv_path.with_name("test.csv")
    query_csv = test if test.is_file() else csv_path
    queries = _csv_column(query_csv, "Context", limit=n_queries)
    source = f"{csv_path} utterances + variants, {query_csv} contexts"
    return Corpus(texts, origins, queries, source)
