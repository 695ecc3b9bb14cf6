"""`make run`'s first build: how long `chatbot demo --build-only` takes into an empty folder.

Runs the command users run (a fresh process: imports, data build, training, the semantic
part, the index, the evaluation) into a temporary folder and prints each step's seconds from
its ``report.json`` beside the wall time. ``--compare`` first builds once more with the
replies' sentence vectors encoded in the index step instead of in the background
(``PipelineOptions(background_sentences=False)``), so the two are measured in one run.

Goal: the first build under 360 s (issue 10: `make run` under 6 minutes on 2 cores).

Run: ``.venv/bin/python bench/first_build.py`` (about 7 minutes; ``--compare``: about 15;
``--max-steps 20`` for a quick check of the script itself).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 360.0
ROOT = Path(__file__).resolve().parent.parent
# The baseline: what `chatbot demo --build-only` runs, with the background encoding off.
BASELINE = """
import sys
from pathlib import Path
from training.pipeline import PipelineOptions, run_pipeline
from training.recipes import chitchat_recipe
from training.sentence import resolve_source
steps = int(sys.argv[2]) if sys.argv[2] != "none" else None
options = PipelineOptions(
    out=Path(sys.argv[1]), max_steps=steps, sentence=resolve_source("auto"),
    background_sentences=False,
)
run_pipeline(chitchat_recipe(), options)
"""


def build(out: Path, background: bool, max_steps: int | None) -> tuple[float, dict]:
    """Builds into the empty folder ``out``; returns the wall seconds and the report."""
    if background:
        command = [str(Path(sys.executable).with_name("chatbot")), "demo", "--build-only"]
        command += ["--out", str(out)]
        command += ["--max-steps", str(max_steps)] if max_steps else []
    else:
        command = [sys.executable, "-c", BASELINE, str(out), str(max_steps or "none")]
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
    return wall, json.loads((out / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="also build without background")
    parser.add_argument("--max-steps", type=int, help="override the preset's training steps")
    args = parser.parse_args()
    runs = [("sentence vectors in the index step", False)] if args.compare else []
    runs.append(("as shipped (in the background)", True))
    rows = []
    for label, background in runs:
        out = Path(tempfile.mkdtemp(prefix="chatbot-first-build-"))
        try:
            print(f"building: {label} ...", flush=True)
            wall, report = build(out, background, args.max_steps)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        rows.append((label, wall, report["timings_s"]))
    steps = list(rows[0][2])
    print(f"\n| build | {' | '.join(steps)} | wall s |")
    print("|---|" + "---|" * (len(steps) + 1))
    for label, wall, timings in rows:
        print(f"| {label} | {' | '.join(f'{timings[s]:.1f}' for s in steps)} | {wall:.1f} |")
    wall = rows[-1][1]
    verdict = "met" if wall < GOAL_S else "not met"
    print(f"\nfirst build {wall:.0f} s; goal < {GOAL_S:.0f} s: {verdict}")
    if len(rows) == 2:
        print(f"as shipped / baseline: {wall / rows[0][1]:.2f}x the time")


if __name__ == "__main__":
    main()
