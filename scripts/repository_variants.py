"""Which turns should a bot answer from? Builds the repository several ways and evaluates each
against the validation rows (never the test rows), with the same model.

    .venv/bin/python scripts/repository_variants.py --shared-data ../shared/data \\
        --model artifacts/ubuntu/model --valid artifacts/ubuntu/data/valid.csv \\
        --out artifacts/ubuntu/variants

Prints one line per variant: repository size, recall@1/10/100 of the true reply against the
whole repository, and the echo and question rates of the served top-1 reply.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VARIANTS = {
    "every turn": {"answers_only": False, "min_words": 1, "merge_near_duplicates": False},
    "answers only": {"answers_only": True, "min_words": 1},
    "answers, 3+ words": {"answers_only": True, "min_words": 3},
    "answers, 5+ words": {"answers_only": True, "min_words": 5},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from chatbot.artifact import load_artifact
    from chatbot.index import load_index
    from chatbot.text import Normalizer
    from training.build import TurnTexts, split_dialogues
    from training.errors import BadRowCounter
    from training.indexing import build_index
    from training.repository import RepositoryOptions, write_repository
    from training.repository_eval import evaluate_repository
    from training.sources.udc_csv import read_eval_rows
    from training.ubuntu_data import DataOptions, read_ubuntu_dialogues

    artifact = load_artifact(args.model)
    normalizer = Normalizer(artifact.config.normalization)
    dialogues = read_ubuntu_dialogues(args.shared_data, BadRowCounter(skip=True))
    splits, _ = split_dialogues((d for ds in dialogues.values() for d in ds), DataOptions().split)
    texts = TurnTexts(normalizer)
    rows = list(read_eval_rows(args.valid))
    results = {}
    for name, options in VARIANTS.items():
        folder = args.out / name.replace(" ", "_").replace(",", "").replace("+", "plus")
        folder.mkdir(parents=True, exist_ok=True)
        write_repository(
            folder / "responses.jsonl", splits["train"], texts, RepositoryOptions(**options)
        )
        build_index(args.model, folder / "responses.jsonl", folder / "index")
        index = load_index(folder / "index", artifact)
        report = evaluate_repository(rows, artifact.scorer(), index, normalizer, (), 0, False)
        results[name] = report
        model, true = report["systems"]["model"], report["true_responses"]
        print(
            f"{name:<20} size {report['repository_size']:>7,}  R@1 {model['recall@1']:.3f}  "
            f"R@10 {model['recall@10']:.3f}  R@100 {model['recall@100']:.3f}  "
            f"echo {model['echo_rate']:.3f} (true {true['echo_rate']:.3f})  "
            f"question {model['question_rate']:.3f} (true {true['question_rate']:.3f})",
            flush=True,
        )
    (args.out / "variants.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
