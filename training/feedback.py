"""Users' votes back into training: UDC-layout rows, and the replies users reject most.

Up-votes become positive rows (label 1), down-votes labelled negatives (label 0) of the
context the model read. ``chatbot train --extra-train FILE`` trains on them: with the
softmax loss a down-voted reply is a hard negative of its context
(:mod:`training.dataset`).

Example:
    >>> from chatbot.store.records import Exchange, Feedback, FeedbackStore
    >>> store = FeedbackStore.open("sqlite://")
    >>> store.record_exchanges([Exchange.example("r1")])
    >>> _ = store.add_feedback(Feedback("r1", "down", "try a reboot"))
    >>> feedback_rows(store)[0].label
    0
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.store.records import FeedbackStore
from chatbot.text import Normalizer
from training.sources.udc_csv import TRAIN_HEADER, TrainRow, write_csv

LABELS = {"up": 1, "down": 0}


@dataclass
class ExportSummary:
    rows: int = 0
    positives: int = 0
    negatives: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> votes left out


def feedback_rows(
    store: FeedbackStore, since: dt.datetime | None = None, summary: ExportSummary | None = None
) -> list[TrainRow]:
    """One training row per vote on a reply of the repository (or of a request's candidates).

    A vote on the fallback text ("not sure") names no reply to learn from and is left out.
    """
    summary = summary if summary is not None else ExportSummary()
    normalizers: dict[str, Normalizer] = {}
    rows = []
    for voted in store.voted(since):
        vote, exchange = voted.feedback, voted.exchange
        if vote.response not in {reply["text"] for reply in exchange.replies}:
            summary.skipped["vote on the fallback text"] += 1
            continue
        mode = exchange.normalization
        normalizer = normalizers.setdefault(mode, Normalizer(mode))
        rows.append(
            TrainRow(
                exchange.context_normalized, normalizer.response(vote.response), LABELS[vote.vote]
            )
        )
    summary.rows = len(rows)
    summary.positives = sum(row.label for row in rows)
    summary.negatives = summary.rows - summary.positives
    return rows


def export_feedback(url: str, out: Path, since: dt.datetime | None = None) -> ExportSummary:
    """Writes the votes of the database at ``url`` as a UDC train-layout CSV."""
    store = FeedbackStore.open(url, must_exist=True)
    try:
        summary = ExportSummary()
        rows = feedback_rows(store, since, summary)
    finally:
        store.close()
    write_csv(out, TRAIN_HEADER, [(r.context, r.response, r.label) for r in rows], progress=False)
    return summary


def downvoted_report(url: str, top: int = 20) -> list[dict[str, Any]]:
    """The replies voted down most (then up least), with their counts and when last voted:
    candidates to remove from the repository (``POST /admin/responses``)."""
    store = FeedbackStore.open(url, must_exist=True)
    try:
        voted = list(store.voted())
    finally:
        store.close()
    tally: dict[str, dict[str, Any]] = {}
    for item in voted:
        vote = item.feedback
        entry = tally.setdefault(
            vote.response, {"response": vote.response, "down": 0, "up": 0, "models": set()}
        )
        entry[vote.vote] += 1
        entry["models"].add(item.exchange.model)
        entry["last_vote"] = max(entry.get("last_vote", vote.created_at), vote.created_at)
    ranked = sorted(
        (e for e in tally.values() if e["down"]), key=lambda e: (-e["down"], e["up"], e["response"])
    )
    return [
        {**e, "models": sorted(e["models"]), "last_vote": e["last_vote"].isoformat()}
        for e in ranked[:top]
    ]
