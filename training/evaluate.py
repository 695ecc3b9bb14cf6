"""The batch evaluation job: rank each row's 10 candidates with a model and with baselines.

A model is anything with ``encode_contexts`` and ``encode_responses`` (:class:`PairEncoder`); its
score for a candidate is the dot product of the context vector (already multiplied by M) and the
candidate's vector. Every context and every distinct candidate text is encoded once, in batches.
A hybrid model (an encoder whose ``lexical`` TF-IDF model and ``lexical_weight`` are set, see
:class:`chatbot.encoder.TextEncoder`) adds ``lexical_weight × cosine(tfidf(c), tfidf(r))``, as the
ranker does.

Example:
    >>> report = run_evaluation(rows, encoder, ["tfidf"], "eval.json")  # doctest: +SKIP
    >>> report["results"]["model"]["recall@1"]  # doctest: +SKIP
    0.61
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm import tqdm

from training.baselines import BASELINES, baseline_scores, candidate_count
from training.metrics import mean_reciprocal_rank, recall_at_k
from training.plots import plot_recall

if TYPE_CHECKING:
    from chatbot.lexical import TfidfModel
from training.sources.udc_csv import EvalRow

MODEL = "model"  # the system name of the model in results
METRICS = ("recall@1", "recall@2", "recall@5", "recall_2@1", "mrr")
_SCORE_CHUNK = 4096  # rows scored at once, bounding the (rows, candidates, dim) gather


class PairEncoder(Protocol):
    """A dual encoder: maps normalised UDC-layout texts to vectors."""

    def encode_contexts(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 context vectors, already multiplied by M."""
        ...

    def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 response vectors."""
        ...


def summarize(scores: np.ndarray) -> dict[str, float]:
    """The reported metrics of one score matrix (true response in column 0).

    Example:
        >>> summarize(np.array([[1.0, 0.0]] * 2))["recall_2@1"]  # doctest: +SKIP
        1.0
    """
    return {
        "recall@1": recall_at_k(scores, 1),
        "recall@2": recall_at_k(scores, 2),
        "recall@5": recall_at_k(scores, 5),
        "recall_2@1": recall_at_k(scores, 1, n_candidates=2),
        "mrr": mean_reciprocal_rank(scores),
    }


def encode_unique(
    texts: Sequence[str],
    encode: Callable[[Sequence[str]], np.ndarray],
    batch_size: int,
    desc: str,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Encodes each distinct text once, in batches.

    Args:
        texts: texts, possibly repeated.
        encode: maps a batch of texts to ``(len(batch), d)`` vectors.
        batch_size: texts per call to ``encode``.
        desc: the progress bar label.
        progress: show a tqdm progress bar.

    Returns:
        ``(vectors, index)``: vectors of the distinct texts, and for each input text the row of
        ``vectors`` that holds it, so ``vectors[index]`` lines up with ``texts``.

    Example:
        >>> vecs, idx = encode_unique(["a", "b", "a"], enc, 2, "texts")  # doctest: +SKIP
        >>> idx.tolist()  # doctest: +SKIP
        [0, 1, 0]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    positions: dict[str, int] = {}
    index = np.fromiter(
        (positions.setdefault(t, len(positions)) for t in texts), dtype=np.int64, count=len(texts)
    )
    unique = list(positions)
    chunks = []
    with tqdm(total=len(unique), desc=desc, unit="text", disable=not progress) as bar:
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            vectors = np.asarray(encode(batch), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(batch):
                raise ValueError(
                    f"{desc}: encoder returned shape {vectors.shape} for {len(batch)} texts"
                )
            chunks.append(vectors)
            bar.update(len(batch))
    return np.concatenate(chunks), index


def model_scores(
    rows: Sequence[EvalRow], encoder: PairEncoder, batch_size: int = 256, progress: bool = True
) -> np.ndarray:
    """Dot-product scores of each row's context with each of its candidates.

    Args:
        rows: the evaluation rows.
        encoder: the model (see :class:`PairEncoder`).
        batch_size: texts per encoder call.
        progress: show progress bars.

    Returns:
        ``(len(rows), n_candidates)`` float32 scores, the true response in column 0.

    Example:
        >>> model_scores(rows, encoder).shape  # doctest: +SKIP
        (18920, 10)
    """
    m = candidate_count(rows)
    ctx_vecs, ctx_idx = encode_unique(
        [row.context for row in rows], encoder.encode_contexts, batch_size, "contexts", progress
    )
    cand_vecs, cand_idx = encode_unique(
        [t for row in rows for t in row.candidates],
        encoder.encode_responses,
        batch_size,
        "responses",
        progress,
    )
    if ctx_vecs.shape[1] != cand_vecs.shape[1]:
        raise ValueError(
            f"context vectors have {ctx_vecs.shape[1]} dims, responses {cand_vecs.shape[1]}"
        )
    cand_idx = cand_idx.reshape(len(rows), m)
    scores = np.empty((len(rows), m), dtype=np.float32)
    for start in range(0, len(rows), _SCORE_CHUNK):
        part = slice(start, start + _SCORE_CHUNK)
        scores[part] = np.einsum("nd,nmd->nm", ctx_vecs[ctx_idx[part]], cand_vecs[cand_idx[part]])
    lexical = lexical_scores(rows, encoder)
    return scores if lexical is None else scores + lexical


def lexical_scores(rows: Sequence[EvalRow], encoder: object) -> np.ndarray | None:
    """The lexical part of a hybrid model's scores, ``(len(rows), n_candidates)``, or ``None``
    when ``encoder`` has no lexical model (``lexical``/``lexical_weight`` attributes).

    Each distinct text is turned into TF-IDF once.
    """
    lexical = getattr(encoder, "lexical", None)
    weight = float(getattr(encoder, "lexical_weight", 0.0) or 0.0)
    if lexical is None or weight <= 0:
        return None
    return np.float32(weight) * lexical_cosines(rows, lexical)


def lexical_cosines(rows: Sequence[EvalRow], lexical: TfidfModel) -> np.ndarray:
    """TF-IDF cosine of each row's context with each of its candidates, ``(len(rows), m)``;
    each distinct text is turned into TF-IDF once."""
    from chatbot.lexical import rowwise_dot

    m = candidate_count(rows)
    contexts = list(dict.fromkeys(row.context for row in rows))
    candidates = list(dict.fromkeys(t for row in rows for t in row.candidates))
    c_pos = {t: i for i, t in enumerate(contexts)}
    r_pos = {t: i for i, t in enumerate(candidates)}
    c_mat, r_mat = lexical.transform(contexts), lexical.transform(candidates)
    c_idx = np.repeat([c_pos[row.context] for row in rows], m)
    r_idx = np.array([r_pos[t] for row in rows for t in row.candidates])
    return rowwise_dot(c_mat[c_idx], r_mat[r_idx]).reshape(len(rows), m)


def evaluate(
    rows: Sequence[EvalRow],
    encoder: PairEncoder | None = None,
    baselines: Iterable[str] = (),
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics of the model (if given) and of each named baseline, all on the same rows.

    Args:
        rows: the evaluation rows.
        encoder: the model, or ``None`` for baselines only.
        baselines: names from :data:`training.baselines.BASELINES`.
        batch_size: texts per encoder call.
        seed: the random baseline's seed.
        progress: show progress bars.

    Returns:
        ``{system: {"recall@1", "recall@2", "recall@5", "recall_2@1", "mrr"}}``, the model
        (system ``"model"``) first, then the baselines in the order given.

    Example:
        >>> evaluate(rows, baselines=["random"])["random"]["recall@1"]  # doctest: +SKIP
        0.1
    """
    baselines = list(baselines)
    unknown = [name for name in baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}")
    if not rows:
        raise ValueError("no evaluation rows")
    results: dict[str, dict[str, float]] = {}
    if encoder is not None:
        results[MODEL] = summarize(model_scores(rows, encoder, batch_size, progress))
    for name in baselines:
        results[name] = summarize(baseline_scores(name, rows, seed))
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table, one line per system.

    Example:
        >>> print(format_table({"random": dict.fromkeys(METRICS, 0.1)}))  # doctest: +SKIP
        system    recall@1  recall@2  recall@5  recall_2@1     mrr
        random       0.100  ...
    """
    width = max(len("system"), *(len(name) for name in results))
    lines = [f"{'system':<{width}}" + "".join(f"{m:>12}" for m in METRICS)]
    for name, metrics in results.items():
        lines.append(f"{name:<{width}}" + "".join(f"{metrics[m]:>12.3f}" for m in METRICS))
    return "\n".join(lines)


def run_evaluation(
    rows: Sequence[EvalRow],
    encoder: PairEncoder | None,
    baselines: Iterable[str],
    json_path: str | Path,
    plot_path: str | Path | None = None,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluates, writes the JSON report (and the plot), and prints the table.

    Args:
        rows: the evaluation rows.
        encoder: the model, or ``None`` for baselines only.
        baselines: names from :data:`training.baselines.BASELINES`.
        json_path: where to write ``{"n": rows, "results": {system: metrics}}``.
        plot_path: where to write a recall@k bar chart (PNG), or ``None``.
        batch_size: texts per encoder call.
        seed: the random baseline's seed.
        progress: show progress bars.

    Returns:
        The report written to ``json_path``.

    Example:
        >>> run_evaluation(rows, None, ["tfidf"], "eval.json")["n"]  # doctest: +SKIP
        18920
    """
    results = evaluate(rows, encoder, baselines, batch_size, seed, progress)
    report = {"n": len(rows), "results": results}
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if plot_path is not None:
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        title = f"Recall@k, 1 in {candidate_count(rows)}, {len(rows)} rows"
        plot_recall(results, plot_path, title=title)
    print(format_table(results))
    return report
