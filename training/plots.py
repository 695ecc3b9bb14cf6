"""Plots of training and evaluation results, written as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``, so no global
backend is chosen and nothing needs a display (the Agg canvas is used to save).

Example::

    plot_recall({"tfidf": {"recall@1": 0.49}}, "recall.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
