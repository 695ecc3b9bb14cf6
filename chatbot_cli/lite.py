"""``chatbot lite``: convert a model's encoders for LiteRT, to serve without TensorFlow.

Example:
    chatbot lite --model artifacts/ubuntu/model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lite",
        help="convert a model's encoders for LiteRT (serving without TensorFlow)",
        description="Convert the context and response encoders of a model artifact to one "
        "LiteRT flatbuffer (encoder.tflite), checked against the Keras network on probe texts, "
        "and add it to the artifact; its weights, version and indexes stay valid. `chatbot "
        "serve` then runs the encoders on LiteRT when there is no GPU (--runtime): no "
        "TensorFlow in the workers, each about 400 MiB smaller (docs/performance.md). `chatbot "
        "train`, `chatbot demo` and `chatbot ubuntu-model` do this already.",
    )
    p.add_argument("--model", type=Path, required=True, help="model artifact directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chatbot.lite import LITE_INFO
    from chatbot.lite_export import export_lite

    export_lite(args.model)
    print(json.dumps(json.loads((args.model / LITE_INFO).read_text()), indent=2))
    return 0
