"""Plots of training and evaluation results, written as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``, so no global
backend is chosen and nothing needs a display (the Agg canvas is used to save).

Example::

    plot_recall({"tfidf": {"recall@1": 0.49}}, "recall.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

RECALL_KEYS = ("recall@1", "recall@2", "recall@5")


def plot_recall(
    results: Mapping[str, Mapping[str, float]], path: str | Path, title: str | None = None
) -> None:
    """A grouped bar chart of recall@k: one group per k, one bar per system.

    Args:
        results: ``{system: {"recall@1": .., "recall@2": .., "recall@5": ..}}``; missing keys
            are left out of the chart.
        path: the PNG file to write.
        title: the chart title; defaults to "Recall@k".

    Example::

        plot_recall({"model": {"recall@1": 0.6, "recall@2": 0.75}}, "r.png")
    """
    keys = [k for k in RECALL_KEYS if any(k in metrics for metrics in results.values())]
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(keys))
    width = 0.8 / max(len(results), 1)
    for i, (system, metrics) in enumerate(results.items()):
        values = [metrics.get(k, np.nan) for k in keys]
        bars = ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, label=system)
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(x, keys)
    ax.set_ylim(0, 1.15)  # headroom above 1.0 for the one-row legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("recall")
    ax.set_title(title or "Recall@k")
    ax.legend(loc="upper center", ncols=max(len(results), 1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def plot_repository(report: Mapping[str, Any], path: str | Path) -> None:
    """Two panels for a repository evaluation (:mod:`training.repository_eval`): recall of the
    true response against the whole repository per system, and the echo and question rates
    of each system's top-1 reply beside the true responses'.

    Example::

        plot_repository(evaluate_repository(rows, scorer, index, normalizer), "repo.png")
    """
    systems: Mapping[str, Mapping[str, float]] = report["systems"]
    fig = Figure(figsize=(11, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    recall_ax, rate_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _grouped_bars(recall_ax, systems, ("recall@1", "recall@10", "recall@100", "recall@1_of_100"))
    recall_ax.set_title(f"True reply among all {report['repository_size']:,} responses")
    rates = {**systems, "true replies": report["true_responses"]}
    keys: tuple[str, ...] = ("echo_rate", "question_rate")
    title = "Top-1 reply: restates the last turn / asks"
    if "semantic_echo_rate" in report["true_responses"]:  # a model with a semantic part
        keys = ("echo_rate", "semantic_echo_rate", "question_rate")
        title = "Top-1 reply: restates the last turn (its words / in others) / asks"
    _grouped_bars(rate_ax, rates, keys)
    rate_ax.set_title(title)
    fig.suptitle(f"Repository evaluation, {report['n']:,} rows")
    fig.tight_layout()
    fig.savefig(path)


def _grouped_bars(ax: Any, results: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> None:
    x = np.arange(len(keys))
    width = 0.8 / max(len(results), 1)
    for i, (system, metrics) in enumerate(results.items()):
        values = [metrics.get(k, np.nan) for k in keys]
        bars = ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, label=system)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, keys)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(loc="upper center", ncols=min(len(results), 3), frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_training_curve(history: Sequence[Mapping[str, float]], path: str | Path) -> None:
    """Training loss and validation recall@1 against the step, on two axes.

    Args:
        history: points ``{"step", "loss"}`` and ``{"step", "valid_recall@1"}`` in any order.
        path: the PNG file to write.
    """
    losses = [(p["step"], p["loss"]) for p in history if "loss" in p]
    recalls = [(p["step"], p["valid_recall@1"]) for p in history if "valid_recall@1" in p]
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if losses:
        ax.plot(*zip(*losses, strict=True), color="tab:blue", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    if recalls:
        ax2 = ax.twinx()
        ax2.plot(*zip(*recalls, strict=True), "o-", color="tab:orange", label="valid R10@1")
        ax2.set_ylabel("validation R10@1", color="tab:orange")
        ax2.set_ylim(0, 1)
    ax.set_title("Training curve")
    fig.tight_layout()
    fig.savefig(path)


def plot_risk_coverage(reports: Mapping[str, Mapping[str, Any]], path: str | Path) -> None:
    """Precision of the answered top-1 replies against the share answered (most confident
    first), one line per job (``training.calibration.calibration_report``), with the 90 %
    precision line.

    Example::

        plot_risk_coverage({"1 in 10": report}, "coverage.png")
    """
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    for name, report in reports.items():
        curve = report["curve"]
        key = next(k for k in report if k.startswith("coverage@"))
        label = (
            f"{name} ({report['n']:,} rows): ECE {report['ece']:.3f}, "
            f"{report[key]:.0%} answered at 90% precision"
        )
        ax.plot(curve["coverage"], curve["precision"], label=label)
    ax.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of questions answered (most confident first)")
    ax.set_ylabel("precision of the top-1 reply")
    ax.set_title("Risk–coverage of the calibrated confidence")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))
