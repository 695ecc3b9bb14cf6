"""Memory while streaming a full-size (1M-row) UDC train.csv: it must stay flat.

Generates a 1,000,000-row ``train.csv`` in UDC v2 layout with
``training.synthetic.write_synthetic_udc`` (reused when already there: it is a few hundred
MB), then streams it through

a. ``training.sources.udc_csv.read_train_rows``, end to end;
b. ``training.dataset.build_vocab``, the vocabulary pass (end to end);
c. ``training.dataset.train_dataset``, the tf.data training pipeline, for ``--batches`` batches;

and reports resident memory: a thread samples VmRSS from /proc/self/status every
``--interval`` seconds, and ``resource.getrusage(...).ru_maxrss`` (the process peak so far) is
read after each phase. Rows/s are printed for each phase.

Goal: RSS flat within each phase (no growth with rows read) and the peak under 2 GiB.

Run: ``.venv/bin/python bench/stream_memory.py`` (``--rows 100000 --batches 300`` to shrink).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")

MIB = 1024 * 1024
GOAL_BYTES = 2 * 1024 * MIB


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class Sampler(threading.Thread):
    """Samples (seconds, RSS, rows done) every ``interval`` seconds for the current phase."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.rows = 0
        self.samples: list[tuple[float, int, int]] = []
        self._start = time.perf_counter()
        self._stop = threading.Event()

    def reset(self) -> None:
        self.rows, self.samples, self._start = 0, [], time.perf_counter()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter() - self._start, rss_bytes(), self.rows))

    def stop(self) -> None:
        self._stop.set()


def report(name: str, sampler: Sampler, rows: int, seconds: float, points: int) -> dict:
    samples = sampler.samples or [(seconds, rss_bytes(), rows)]
    step = max(1, len(samples) // points)
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    print(f"\n[{name}] {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")
    print("   t (s)    rows done    RSS (MiB)")
    for t, rss, done in shown:
        done_text = f"{done:>12,}" if done else f"{'-':>12}"
        print(f"  {t:6.1f} {done_text} {rss / MIB:12.1f}")
    rss_values = [s[1] for s in samples]
    # Growth after the first fifth of the phase: buffers and caches fill at the start.
    settled = rss_values[len(rss_values) // 5 :] or rss_values
    growth = settled[-1] - settled[0]
    print(
        f"  sampled RSS: min {min(rss_values) / MIB:.1f}, max {max(rss_values) / MIB:.1f} MiB; "
        f"change after the first fifth {growth / MIB:+.1f} MiB; "
        f"ru_maxrss (process peak so far) {peak_bytes() / MIB:.1f} MiB"
    )
    return {"name": name, "max": max(rss_values), "growth": growth, "rate": rows / seconds}


def ensure_data(folder: Path, rows: int) -> Path:
    train = folder / "train.csv"
    if train.exists():
        print(f"reusing {train} ({train.stat().st_size / MIB:.0f} MiB)")
        return train
    from training.synthetic import write_synthetic_udc

    part = folder.with_name(folder.name + ".part")
    print(f"generating {rows:,} rows into {folder} ...")
    start = time.perf_counter()
    write_synthetic_udc(part, n_train=rows, n_valid=10, n_test=10, seed=0)
    part.rename(folder)
    print(f"  took {time.perf_counter() - start:.0f} s, {train.stat().st_size / MIB:.0f} MiB")
    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument(
        "--dir",
        type=Path,
        help="folder of the generated files (default: $TMPDIR/chatbot-bench/udc-<rows>)",
    )
    parser.add_argument("--batches", type=int, default=3000, help="tf.data batches to pull")
    parser.add_argument("--batch", type=int, default=128, help="tf.data batch size")
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling period (s)")
    parser.add_argument("--points", type=int, default=8, help="samples shown per phase")
    args = parser.parse_args()

    folder = args.dir or Path(tempfile.gettempdir()) / "chatbot-bench" / f"udc-{args.rows}"
    train = ensure_data(folder, args.rows)
    results = []
    print(f"RSS at start: {rss_bytes() / MIB:.1f} MiB")
    sampler = Sampler(args.interval)
    sampler.start()

    # a. The CSV reader alone (no TensorFlow imported yet).
    from training.sources.udc_csv import read_train_rows

    sampler.reset()
    start, n = time.perf_counter(), 0
    for n, _row in enumerate(read_train_rows(train), 1):
        if n % 1000 == 0:
            sampler.rows = n
    seconds = time.perf_counter() - start
    results.append(report("a. read_train_rows", sampler, n, seconds, args.points))

    # b. The vocabulary pass.
    start = time.perf_counter()
    import tensorflow as tf

    from chatbot.config import ModelConfig
    from training.dataset import InputOptions, build_vocab, train_dataset

    print(
        f"\nimporting TensorFlow took {time.perf_counter() - start:.1f} s; "
        f"RSS now {rss_bytes() / MIB:.1f} MiB"
    )
    config = ModelConfig()
    sampler.reset()
    start = time.perf_counter()
    vocab = build_vocab(train, config)
    results.append(report("b. build_vocab", sampler, n, time.perf_counter() - start, args.points))
    print(f"  vocabulary: {len(vocab):,} words")

    # c. The training input pipeline.
    options = InputOptions(batch_size=args.batch, shuffle_buffer=args.shuffle_buffer)
    dataset = train_dataset(train, vocab, config, options)
    sampler.reset()
    start = time.perf_counter()
    examples = 0
    for i, ((c, _r), _y) in enumerate(dataset.take(args.batches), 1):
        examples += int(c.shape[0])
        if i % 50 == 0:
            sampler.rows = examples
    seconds = time.perf_counter() - start
    name = f"c. train_dataset, {args.batches} batches of {args.batch}, bucketed"
    results.append(report(name, sampler, examples, seconds, args.points))
    sampler.stop()
    del tf

    print("\nsummary")
    print(f"{'phase':<48} {'rows/s':>10} {'max RSS MiB':>12} {'growth MiB':>11}")
    for r in results:
        max_mib, growth_mib = r["max"] / MIB, r["growth"] / MIB
        print(f"{r['name']:<48} {r['rate']:>10,.0f} {max_mib:>12.1f} {growth_mib:>+11.1f}")
    peak = peak_bytes()
    flat = all(abs(r["growth"]) < 64 * MIB for r in results)
    print(
        f"process peak RSS (ru_maxrss): {peak / MIB:.1f} MiB; goal < 2048 MiB: "
        f"{'meets' if peak < GOAL_BYTES else 'misses'}; flat (|growth| < 64 MiB in every "
        f"phase): {'yes' if flat else 'no'}"
    )


if __name__ == "__main__":
    main()
