"""Training throughput: length-bucketed batches vs batches padded to the maximum lengths.

Measures training examples/s of the dual-encoder LSTM (LSTM 256, embedding 100, vocabulary
20k, contexts up to 160 tokens, responses up to 80, batch 512, binary loss, Adam) on
generated UDC-shaped rows (``training.synthetic``), fed through the real
``training.dataset.train_dataset`` pipeline, once with ``bucketing=True`` and once with
``bucketing=False``, in the same process. On a CPU the Keras LSTM steps through every padded
position, so bucketing should pay roughly in proportion to the padding it removes.

Goal: bucketed / padded >= 1.8x.

Each mode warms up (tracing, pipeline fill) for ``--warmup`` steps, then ``--steps`` steps
are timed. ``--rounds`` repeats both modes alternately to average out a noisy shared machine.

Run: ``.venv/bin/python bench/train_throughput.py`` (``--steps 3 --batch 64`` for a quick check).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per mode first")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the modes this often")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=100)
    parser.add_argument("--vocab", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=20_000, help="generated training rows")
    parser.add_argument("--data", type=Path, help="folder for train.csv (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TF's)")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from chatbot.config import ModelConfig
    from chatbot.model import build_dual_encoder
    from training.dataset import InputOptions, build_vocab, train_dataset
    from training.synthetic import write_synthetic_udc
    from training.train import _losses

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix="bench-train-")
    folder = args.data or Path(tmp.name)
    train_csv = folder / "train.csv"
    if not train_csv.exists():
        write_synthetic_udc(folder, n_train=args.rows, n_valid=1, n_test=1, seed=0)

    config = ModelConfig(
        vocab_size=args.vocab,
        min_count=1,
        embedding_dim=args.embedding,
        hidden_size=args.hidden,
        max_context_tokens=160,
        max_response_tokens=80,
        loss="binary",
    )
    vocab = build_vocab(train_csv, config)
    keras.utils.set_random_seed(0)
    # The embedding table gets the full vocabulary size, as with real data; the generated
    # text uses only a few hundred distinct words, which does not change the LSTM's cost.
    model = build_dual_encoder(config, vocab_size=args.vocab)
    optimizer = keras.optimizers.Adam(1e-3, global_clipnorm=10.0)
    optimizer.build(model.trainable_variables)

    ids = tf.TensorSpec((None, None), tf.int32)

    # The step of training/train.py, without the distribution strategy wrapper: one trace
    # serves every bucket shape (train.py reaches the same with reduce_retracing).
    @tf.function(input_signature=[ids, ids, tf.TensorSpec((None,), tf.float32)])
    def train_step(context_ids: tf.Tensor, response_ids: tf.Tensor, labels: tf.Tensor):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(
                _losses(model, config, (context_ids, response_ids), labels)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    iterators = {}
    for mode, bucketing in (("bucketed", True), ("padded", False)):
        options = InputOptions(batch_size=args.batch, shuffle_buffer=10_000, bucketing=bucketing)
        iterators[mode] = iter(train_dataset(train_csv, vocab, config, options))

    def run(mode: str, steps: int) -> tuple[float, int, dict[str, float]]:
        seconds, examples = 0.0, 0
        real = {"context": 0, "response": 0}
        padded = {"context": 0, "response": 0}
        for _ in range(steps):
            start = time.perf_counter()  # includes waiting for the input pipeline
            (c, r), y = next(iterators[mode])
            train_step(c, r, y).numpy()
            seconds += time.perf_counter() - start
            examples += int(c.shape[0])
            real["context"] += int(np.count_nonzero(c.numpy()))
            real["response"] += int(np.count_nonzero(r.numpy()))
            padded["context"] += int(c.shape[0] * c.shape[1])
            padded["response"] += int(r.shape[0] * r.shape[1])
        lengths = {
            f"{side} tokens/example {kind}": v / max(examples, 1)
            for kind, d in (("real", real), ("padded", padded))
            for side, v in d.items()
        }
        return seconds, examples, lengths

    print(
        f"config: LSTM {args.hidden}, embedding {args.embedding}, vocab {args.vocab}, "
        f"batch {args.batch}, max lengths 160/80, binary loss; TF intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"{os.cpu_count()} CPUs"
    )
    totals = {mode: [0.0, 0] for mode in iterators}
    lengths_seen: dict[str, dict[str, float]] = {}
    for mode in iterators:
        start = time.perf_counter()
        run(mode, args.warmup)
        print(f"{mode}: warm-up of {args.warmup} steps took {time.perf_counter() - start:.1f} s")
    for round_ in range(args.rounds):
        for mode in iterators:
            seconds, examples, lengths = run(mode, args.steps)
            totals[mode][0] += seconds
            totals[mode][1] += examples
            lengths_seen[mode] = lengths
            print(
                f"round {round_ + 1} {mode}: {args.steps} steps, {examples} examples in "
                f"{seconds:.1f} s = {examples / seconds:.1f} examples/s "
                f"({seconds / args.steps:.2f} s/step)"
            )
    print()
    print(f"{'mode':<10} {'examples/s':>11} {'ctx real/padded':>16} {'resp real/padded':>17}")
    rate = {}
    for mode, (seconds, examples) in totals.items():
        rate[mode] = examples / seconds
        ln = lengths_seen[mode]
        real, pad = "tokens/example real", "tokens/example padded"
        ctx = f"{ln[f'context {real}']:.1f}/{ln[f'context {pad}']:.1f}"
        resp = f"{ln[f'response {real}']:.1f}/{ln[f'response {pad}']:.1f}"
        print(f"{mode:<10} {rate[mode]:>11.1f} {ctx:>16} {resp:>17}")
    ratio = rate["bucketed"] / rate["padded"]
    verdict = "meets" if ratio >= 1.8 else "misses"
    print(f"bucketed / padded throughput: {ratio:.2f}x (goal >= 1.8x: {verdict})")


if __name__ == "__main__":
    main()
