"""``chatbot feedback export|report``: users' votes as training rows, and the replies they
reject most.

Example:
    chatbot feedback export --database sqlite:///artifacts/feedback.sqlite3 --out votes.csv
    chatbot train --preset chitchat --train data/train.csv --extra-train votes.csv --out m2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

from chatbot.store.database import DEFAULT_URL


def _date(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "feedback",
        help="users' votes: export them as training rows, or list the replies voted down",
        description="Read the votes the service stored (POST /feedback) with what the bot "
        "was answering.",
    )
    commands = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    database = {
        "default": os.environ.get("CHATBOT_DATABASE_URL", DEFAULT_URL),
        "help": "SQLAlchemy URL of the service's database (default: $CHATBOT_DATABASE_URL, "
        f"else {DEFAULT_URL})",
    }

    export = commands.add_parser(
        "export",
        help="votes as UDC train-layout rows (up: label 1, down: label 0)",
        description="Write one row per vote: the context the model read, the reply voted "
        "on, and 1 for up or 0 for down. Train on it with `chatbot train --extra-train`.",
    )
    export.add_argument("--database", **database)
    export.add_argument("--out", type=Path, required=True, help="the CSV to write")
    export.add_argument("--since", type=_date, help="only votes from this ISO date or time on")
    export.set_defaults(func=run_export)

    report = commands.add_parser(
        "report",
        help="the replies voted down most, to remove from the repository",
        description="List repository replies by down-votes (then fewest up-votes). Remove "
        "them while serving with POST /admin/responses {'remove': [...]}, or rebuild the index.",
    )
    report.add_argument("--database", **database)
    report.add_argument("--top", type=int, default=20, help="how many replies (default 20)")
    report.add_argument("--json", type=Path, help="also write the list as JSON")
    report.set_defaults(func=run_report)


def run_export(args: argparse.Namespace) -> int:
    from training.feedback import export_feedback

    summary = export_feedback(args.database, args.out, args.since)
    skipped = ", ".join(f"{n} {why}" for why, n in summary.skipped.items()) or "none"
    print(
        f"wrote {args.out}: {summary.rows} rows ({summary.positives} up, "
        f"{summary.negatives} down); left out: {skipped}"
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from training.feedback import downvoted_report

    rows = downvoted_report(args.database, args.top)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if not rows:
        print("no reply has been voted down")
        return 0
    print(f"{'down':>5} {'up':>4}  {'last vote':<20}  reply")
    for row in rows:
        text = row["response"].replace("\n", " ")
        text = text if len(text) <= 80 else text[:77] + "..."
        print(f"{row['down']:>5} {row['up']:>4}  {row['last_vote'][:19]:<20}  {text}")
    print(
        "\nto stop serving them: POST /admin/responses "
        + json.dumps({"remove": [row["response"] for row in rows[:3]]})
    )
    return 0
