"""The batch evaluation job: rank each row's 10 candidates with a model and with baselines.

A model is a :class:`chatbot.scoring.Scorer`: its score for a candidate is the model's full
logit (for a hybrid model, the TF-IDF part included), exactly as served. Every context and
every distinct candidate text is encoded once, in batches.

Example:
    >>> from training.sources.udc_csv import EvalRow
    >>> others = tuple(f"topic{i} __eou__" for i in range(9))
    >>> rows = [EvalRow("wifi __eou__ __eot__", "wifi driver __eou__", others)]
    >>> evaluate(rows, baselines=["tfidf"], progress=False)["tfidf"]["recall@1"]
    1.0
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chatbot.calibration import Calibration
from chatbot.scoring import Scorer, candidate_count
from chatbot.text import Normalizer
from training.baselines import BASELINES, baseline_scores
from training.metrics import mean_reciprocal_rank, recall_at_k
from training.plots import plot_recall
from training.raw_text import raw_arguments
from training.sources.udc_csv import EvalRow

if TYPE_CHECKING:
    from chatbot.index import ResponseIndex

MODEL = "model"  # the system name of the model in results
METRICS = ("recall@1", "recall@2", "recall@5", "recall_2@1", "mrr")


def summarize(scores: np.ndarray) -> dict[str, float]:
    """The reported metrics of one score matrix (true response in column 0).

    Example:
        >>> scores = np.zeros((2, 10)); scores[0, 0] = 1.0  # row 0 right, row 1 all tied
        >>> summarize(scores)["recall@1"]
        0.5
    """
    return {
        "recall@1": recall_at_k(scores, 1),
        "recall@2": recall_at_k(scores, 2),
        "recall@5": recall_at_k(scores, 5),
        "recall_2@1": recall_at_k(scores, 1, n_candidates=2),
        "mrr": mean_reciprocal_rank(scores),
    }


def model_scores(
    rows: Sequence[EvalRow], scorer: Scorer, batch_size: int = 256, progress: bool = True
) -> np.ndarray:
    """The model's scores of each row's candidates: ``(len(rows), n_candidates)``, the true
    response in column 0."""
    contexts = [row.context for row in rows]
    candidates = [row.candidates for row in rows]
    raw = raw_arguments(rows)  # the sentence encoder reads raw text
    return scorer.pair_scores(contexts, candidates, batch_size, progress, **raw)


def evaluate(
    rows: Sequence[EvalRow],
    scorer: Scorer | None = None,
    baselines: Iterable[str] = (),
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics of the model (if given) and of each named baseline, all on the same rows.

    Args:
        rows: the evaluation rows.
        scorer: the model, or ``None`` for baselines only.
        baselines: names from :data:`training.baselines.BASELINES`.
        batch_size: texts per encoder call.
        seed: the random baseline's seed.
        progress: show progress bars.

    Returns:
        ``{system: {"recall@1", "recall@2", "recall@5", "recall_2@1", "mrr"}}``, the model
        (system ``"model"``) first, then the baselines in the order given.
    """
    if not rows:
        raise ValueError("no evaluation rows")
    scores = model_scores(rows, scorer, batch_size, progress) if scorer is not None else None
    return evaluate_scores(rows, scores, baselines, seed)


def evaluate_scores(
    rows: Sequence[EvalRow], scores: np.ndarray | None, baselines: Iterable[str], seed: int = 0
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` with the model's scores of the rows given (or ``None``)."""
    baselines = list(baselines)
    unknown = [name for name in baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}")
    if not rows:
        raise ValueError("no evaluation rows")
    results: dict[str, dict[str, float]] = {}
    if scores is not None:
        results[MODEL] = summarize(scores)
    for name in baselines:
        results[name] = summarize(baseline_scores(name, rows, seed))
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table, one line per system.

    Example:
        >>> print(format_table({"random": dict.fromkeys(METRICS, 0.5)}))
        system    recall@1    recall@2    recall@5  recall_2@1         mrr
        random       0.500       0.500       0.500       0.500       0.500
    """
    width = max(len("system"), *(len(name) for name in results))
    lines = [f"{'system':<{width}}" + "".join(f"{m:>12}" for m in METRICS)]
    for name, metrics in results.items():
        lines.append(f"{name:<{width}}" + "".join(f"{metrics[m]:>12.3f}" for m in METRICS))
    return "\n".join(lines)


def run_evaluation(
    rows: Sequence[EvalRow],
    scorer: Scorer | None,
    baselines: Iterable[str],
    json_path: str | Path,
    plot_path: str | Path | None = None,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
    repository: Repository | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """Evaluates, writes the JSON report (and the plot), and prints the table.

    Args:
        rows: the evaluation rows.
        scorer: the model, or ``None`` for baselines only.
        baselines: names from :data:`training.baselines.BASELINES`.
        json_path: where to write ``{"n": rows, "results": {system: metrics}}``.
        plot_path: where to write a recall@k bar chart (PNG), or ``None``.
        batch_size: texts per encoder call.
        seed: the random baseline's seed.
        progress: show progress bars.
        repository: also rank each true response against this whole repository
            (:mod:`training.repository_eval`), reported under ``"repository"`` and plotted
            beside ``plot_path`` as ``<stem>_repository.png``.
        calibration: the model's confidence curves: their expected calibration error and
            risk–coverage curve on these rows (1 in 10, and against the repository when one
            is given) are reported under ``"calibration"`` and plotted as
            ``<stem>_coverage.png``.

    Returns:
        The report written to ``json_path``.
    """
    if not rows:
        raise ValueError("no evaluation rows")
    scores = model_scores(rows, scorer, batch_size, progress) if scorer is not None else None
    results = evaluate_scores(rows, scores, baselines, seed)
    report: dict[str, Any] = {"n": len(rows), "results": results}
    measured = calibration if scores is not None else None
    if repository is not None:
        from training.repository_eval import evaluate_repository

        report["repository"] = evaluate_repository(
            rows,
            scorer,
            repository.index,
            repository.normalizer,
            baselines=[b for b in baselines if b == "tfidf"],
            seed=seed,
            progress=progress,
            calibration=measured,
        )
    if scores is not None and measured is not None:
        from training.calibration import calibration_report, candidate_examples

        report["calibration"] = {
            "1 in 10": calibration_report(
                measured.curve("candidates"), candidate_examples(scores), measured.fitted
            )
        }
        if repository is not None:  # measured on the served ranking the evaluation made
            report["calibration"]["repository"] = report["repository"].pop("calibration")
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if plot_path is not None:
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        title = f"Recall@k, 1 in {candidate_count([r.candidates for r in rows])}, {len(rows)} rows"
        plot_recall(results, plot_path, title=title)
        if repository is not None:
            from training.plots import plot_repository

            plot_path = Path(plot_path)
            repository_plot = plot_path.with_name(f"{plot_path.stem}_repository{plot_path.suffix}")
            plot_repository(report["repository"], repository_plot)
        if "calibration" in report:
            from training.plots import plot_risk_coverage

            plot_path = Path(plot_path)
            coverage_plot = plot_path.with_name(f"{plot_path.stem}_coverage{plot_path.suffix}")
            plot_risk_coverage(report["calibration"], coverage_plot)
    print(format_table(results))
    if repository is not None:
        print(format_repository_table(report["repository"]))
    if "calibration" in report:
        print(format_calibration(report["calibration"]))
    return report


def format_calibration(reports: dict[str, Any]) -> str:
    """One line per job: how well the confidence holds on these rows.

    Example:
        >>> r = {"fitted": True, "n": 10, "accuracy": 0.5, "mean_confidence": 0.52, "ece": 0.04,
        ...      "coverage@90%_precision": 0.2}
        >>> print(format_calibration({"1 in 10": r}))  # doctest: +NORMALIZE_WHITESPACE
        confidence (1 in 10, 10 rows): expected calibration error 0.040
          (accuracy 0.500, mean confidence 0.520); coverage at 90% top-1 precision 0.200
    """
    lines = []
    for name, r in reports.items():
        key = next(k for k in r if k.startswith("coverage@"))
        target = key.removeprefix("coverage@").removesuffix("_precision")
        note = "" if r["fitted"] else " [uncalibrated: σ(score)]"
        lines.append(
            f"confidence ({name}, {r['n']:,} rows): expected calibration error {r['ece']:.3f} "
            f"(accuracy {r['accuracy']:.3f}, mean confidence {r['mean_confidence']:.3f}); "
            f"coverage at {target} top-1 precision {r[key]:.3f}{note}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Repository:
    """A response index to evaluate against, and how the model normalises text."""

    index: ResponseIndex
    normalizer: Normalizer


REPOSITORY_METRICS = (
    "recall@1",
    "recall@10",
    "recall@100",
    "mrr",
    "median_rank",
    "recall@1_of_100",
    "echo_rate",
    "question_rate",
)


def format_repository_table(report: dict[str, Any]) -> str:
    """The repository evaluation as a plain-text table, the true replies' rates last.

    Example:
        >>> row = dict.fromkeys(REPOSITORY_METRICS, 0.5)
        >>> report = {"n": 2, "repository_size": 9, "systems": {"tfidf": row},
        ...           "true_responses": {"echo_rate": 0.0, "question_rate": 0.5}}
        >>> print(format_repository_table(report).splitlines()[0])
        whole repository (9 responses, 2 rows)
    """
    width = max(len("true replies"), *(len(name) for name in report["systems"]))
    columns: tuple[str, ...] = REPOSITORY_METRICS
    if "semantic_echo_rate" in report["true_responses"]:  # a model with a semantic part
        columns = (*columns, "semantic_echo_rate")

    widths = [max(16, len(m) + 2) for m in columns]  # a name never runs into the next

    def cells(metrics: dict[str, float]) -> str:
        return "".join(
            f"{metrics[m]:>{w}.3f}" if m in metrics else f"{'':>{w}}"
            for m, w in zip(columns, widths, strict=True)
        )

    lines = [
        f"whole repository ({report['repository_size']:,} responses, {report['n']:,} rows)",
        f"{'system':<{width}}" + "".join(f"{m:>{w}}" for m, w in zip(columns, widths, strict=True)),
    ]
    for name, metrics in report["systems"].items():
        lines.append(f"{name:<{width}}" + cells(metrics))
    lines.append(f"{'true replies':<{width}}" + cells(report["true_responses"]))
    kept = report["systems"].get("model", {}).get("served_recall@10_of_exact")
    if kept is not None:
        lines.append(f"served ranking: recall@10 of the exact ranking {kept:.3f}")
    return "\n".join(lines)
