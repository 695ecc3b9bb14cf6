"""``chatbot calibrate``: fit a model's confidence curves on validation rows.

Example:
    chatbot calibrate --model runs/m1 --data valid.csv --repository runs/i1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chatbot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit the confidence of the best reply on validation rows (saved in the model)",
        description="Fit how likely the best reply is to be the true one, from its score and "
        "its margin over the runner-up (Platt scaling), on 1-in-10 validation rows and, with "
        "--repository, on the whole repository as the service ranks it. The curves are written "
        "into the artifact (calibration.json); its weights, version and indexes stay valid. "
        "Use validation rows only: `chatbot eval` measures the result on test rows.",
    )
    p.add_argument("--model", type=Path, required=True, help="model artifact directory")
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="1-in-10 validation file (UDC valid.csv layout); repeat for several",
    )
    p.add_argument("--repository", type=Path, metavar="INDEX_DIR", help="the model's index")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.calibration import calibrate_model

    missing = [str(path) for path in args.data if not path.is_file()]
    if missing:
        raise UsageError(f"no such validation file: {', '.join(missing)}")
    sets = {str(path): path for path in args.data}
    summary = calibrate_model(args.model, sets, args.repository)
    print(json.dumps(summary, indent=2))
    return 0
