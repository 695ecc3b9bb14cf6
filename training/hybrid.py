"""Makes a trained dual encoder hybrid: fits its TF-IDF model and tunes its weight.

The hybrid score itself is :mod:`chatbot.scoring`'s. The weight is tuned after training on
validation rows, always against the neural part alone (so re-tuning an artifact that is
already hybrid does not count the lexical part twice), and the fitted TF-IDF model is saved
into the artifact (``chatbot.lexical``), so serving and ``chatbot eval`` apply the same score.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.lexical import TfidfModel
from chatbot.scoring import PairEncoder, ScoreParts, Scorer
from training.metrics import mean_reciprocal_rank, recall_at_k
from training.sources.udc_csv import EvalRow, read_eval_rows, read_train_rows

log = logging.getLogger(__name__)


def fit_lexical(train_path: Path) -> TfidfModel:
    """The hybrid's TF-IDF model, fitted on the distinct contexts and responses of a training
    file (sub-linear tf, words in 2+ texts: the best of the variants tried, docs/results.md)."""
    texts: dict[str, None] = {}
    for row in read_train_rows(train_path):
        texts.setdefault(row.context)
        texts.setdefault(row.response)
    return TfidfModel.fit(texts, min_df=2, sublinear_tf=True)


def score_parts(rows: Sequence[EvalRow], encoder: PairEncoder, lexical: TfidfModel) -> ScoreParts:
    """The neural scores ``cᵀMr`` (of ``encoder`` alone) and TF-IDF cosines of each row's
    candidates, true one first."""
    scorer = Scorer(encoder, lexical, lexical_weight=0.0)
    return scorer.parts([row.context for row in rows], [row.candidates for row in rows])


# In-batch softmax training makes the neural logits large (their spread over 10 candidates is
# tens of units), while the cosine is in [0, 1]: hence weights up to the hundreds.
WEIGHT_GRID = (
    0.0,
    0.5,
    1.0,
    2.0,
    3.0,
    4.0,
    6.0,
    8.0,
    12.0,
    16.0,
    24.0,
    32.0,
    48.0,
    64.0,
    96.0,
    128.0,
)


def tune_lexical_weight(
    parts: Sequence[ScoreParts], grid: Sequence[float] = WEIGHT_GRID
) -> tuple[float, list[dict[str, float]]]:
    """The weight of the lexical cosine that maximises the mean MRR over validation sets.

    Args:
        parts: per validation set, the score parts of its rows (see :func:`score_parts`).
        grid: the weights tried; ties go to the smallest.

    Returns:
        The best weight and, per weight, the mean R10@1 and MRR.

    Example:
        >>> parts = ScoreParts(neural=np.array([[0.0, 1.0]]), cosine=np.array([[1.0, 0.0]]))
        >>> tune_lexical_weight([parts], grid=(0.0, 2.0))[0]
        2.0
    """
    table = []
    for w in grid:
        r1 = float(np.mean([recall_at_k(p.combined(w), 1) for p in parts]))
        mrr = float(np.mean([mean_reciprocal_rank(p.combined(w)) for p in parts]))
        table.append({"weight": float(w), "recall@1": r1, "mrr": mrr})
    best = max(table, key=lambda t: (t["mrr"], -t["weight"]))
    return best["weight"], table


def add_lexical(
    model_dir: Path, train_csv: Path, valid_sets: Mapping[str, Path], name: str
) -> dict[str, Any]:
    """Fits TF-IDF on ``train_csv``, tunes its weight on ``valid_sets`` and rewrites the
    artifact at ``model_dir`` with both (a hybrid model when the best weight is above 0).

    Returns:
        ``{"lexical_weight", "sets", "grid"}``: the chosen weight and the validation table.
    """
    from chatbot.artifact import load_artifact, save_artifact

    artifact = load_artifact(model_dir)
    lexical = fit_lexical(train_csv)
    encoder = artifact.encoder(jit_compile=False)  # the neural part alone
    present = {k: p for k, p in valid_sets.items() if p.is_file()}
    parts = [score_parts(list(read_eval_rows(p)), encoder, lexical) for p in present.values()]
    weight, table = tune_lexical_weight(parts)
    tuning = {"lexical_weight": weight, "sets": list(present), "grid": table}
    log.info("hybrid: lexical_weight %.1f on %s", weight, ", ".join(present))
    # The TF-IDF model is kept even at weight 0: the echo rule uses it (chatbot.scoring).
    save_artifact(
        model_dir,
        artifact.model,
        artifact.vocab,
        dataclasses.replace(artifact.config, lexical_weight=weight),
        name=name,
        extra={"training": artifact.manifest.get("training"), "lexical_tuning": tuning},
        lexical=lexical,
    )
    return tuning
