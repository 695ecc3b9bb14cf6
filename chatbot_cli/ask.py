"""``chatbot ask``: put questions to a model and its repository, as a user of the service would.

Example:
    chatbot ask --model artifacts/ubuntu/model --index artifacts/ubuntu/index \\
        --questions docs/ubuntu_questions.txt --out artifacts/ubuntu/answers.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chatbot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ask",
        help="print the bot's replies to questions (one a line, or --question)",
        description="Answer each question with the served ranking (the same path as "
        "POST /respond) and print the top replies; --out also writes them as JSON lines.",
    )
    p.add_argument("--model", type=Path, required=True, help="model artifact directory")
    p.add_argument("--index", type=Path, required=True, help="response index directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--questions", type=Path, help="a file of questions, one a line (# comments)"
    )
    source.add_argument("--question", action="append", help="a question (repeatable)")
    p.add_argument("-k", type=int, default=1, help="replies per question (default: 1)")
    p.add_argument("--out", type=Path, help="also write {question, replies} JSON lines here")
    p.set_defaults(func=run)


def read_questions(path: Path) -> list[str]:
    """The non-empty lines of ``path`` that are not ``#`` comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def run(args: argparse.Namespace) -> int:
    from chatbot.ranker import Ranker  # lazy: pulls in TensorFlow

    questions = read_questions(args.questions) if args.questions else args.question
    if not questions:
        raise UsageError(f"{args.questions}: no questions")
    ranker = Ranker.load(args.model, args.index)
    hits = ranker.respond([[q] for q in questions], args.k)
    records = []
    for number, (question, replies) in enumerate(zip(questions, hits, strict=True), start=1):
        print(f"{number:>3}. {question}")
        for hit in replies:
            print("     -> " + hit.text.replace("\n", "\n        ") + f"   ({hit.score:.2f})")
        records.append(
            {"question": question, "replies": [{"text": h.text, "score": h.score} for h in replies]}
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return 0
