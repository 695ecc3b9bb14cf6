"""The served path in one process, stage by stage: what one ``/respond`` costs at 100k and 1M.

Loads the hybrid model users are served (``bench/_served_index.py``: the trained Ubuntu model
when built, else a stand-in of its shape) with a repository of real utterances grown to each
size, as ``chatbot serve`` does (``Ranker.load``: memory-mapped index, float16 exact search on
a CPU above 4M numbers), and answers the benchmark's real contexts in batches of 1 and 32.

Per configuration it prints p50/p99 milliseconds per call, and the p50 of each stage:
normalise (in the request handler, per context), encode, neural search, lexical search,
fusion and filters (on the model thread). Reference lines run in the same process:

* ``before``: the same model and index with the lexical search as it was (the context's
  TF-IDF row times every response row, then a sort of the non-zeros); the ratio column is
  each line's p50 over this one's;
* ``neural-only``: an untrained neural-only artifact over random vectors (what this
  benchmark measured before: not the path users get);
* ``8-bit IVF, 64 cells (before)``: where the index has a stored ANN, the neural search that
  was served before the fast-scan layout (:mod:`chatbot.ann`), built once into the workdir.

Recall columns (over the first ``--recall-queries`` contexts): ``recall@10 of exact``, the
share of each context's 10 best responses by the exact full score that the line returns; and
``by base text``, the same counted over the distinct base texts of those 10 (a variant of a
base text stands for every variant of it). The corpus grows real utterances with variants
that differ by one word and share their base text's vector give or take noise
(:mod:`bench._served_corpus`), so at 1M an exact top-10 holds several variants of one reply
with near-equal scores, and which of them a line returns is decided by that noise; a real
repository's figure is ``chatbot eval --repository``'s.

Goal (issue 8, 2 cores): 1M, batch 1, p99 <= 60 ms with normalisation included.

Run: ``.venv/bin/python bench/served_path.py`` (``--sizes 100000 --calls 30`` to shrink).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench._served_corpus import DEFAULT_CSV
from bench._served_index import neural_reference, served_index, served_model
from chatbot.scoring import RANK_STAGES, hybrid_score
from chatbot.search import make_backend

STAGES = ("normalise", *RANK_STAGES)  # normalise: in the request handler


class FullProduct:
    """The lexical search before postings, with the interface of ``Postings.top``."""

    def __init__(self, rows) -> None:
        self.rows = rows

    def top(self, query, rows, n, **_):
        row = (query @ self.rows.T).tocsr()
        best = np.argsort(-row.data, kind="stable")[:n]
        return row.indices[best].astype(np.int64), row.data[best]


def rebuilt(ranker, **parts):
    """The ranker with some of its parts replaced."""
    from chatbot.ranker import Ranker

    given = {"scorer": ranker.scorer, "normalizer": ranker.normalizer, "index": ranker.index,
             "backend": ranker.backend, "model_version": ranker.model_version}  # fmt: skip
    return Ranker(**{**given, **parts})


def measure(ranker, queries, raw, batch: int, calls: int) -> dict[str, np.ndarray]:
    from chatbot.ranker import Query
    from chatbot.timing import StageTimes

    totals, stages = [], {s: [] for s in STAGES}
    for call in range(calls):
        at = (call * batch) % max(1, len(queries) - batch)
        start = time.perf_counter()
        for context in raw[at : at + batch]:
            ranker.prepare([context])
        normalise = time.perf_counter() - start
        times = StageTimes()
        prepared = [Query(q, q.rsplit("__eot__", 1)[-1]) for q in queries[at : at + batch]]
        ranker.respond_prepared(prepared, 10, times)
        totals.append(time.perf_counter() - start)
        stages["normalise"].append(normalise)
        for name, seconds in times.seconds.items():
            stages[name].append(seconds)
    out = {name: np.array(v) * 1000 for name, v in stages.items() if v}
    out["total"] = np.array(totals) * 1000
    return out


def sq8_reference(workdir: Path, index, n: int):
    """The neural search served before the fast-scan layout: faiss IVF with 8-bit codes,
    64 of its cells visited, its own scores (built once into ``workdir``)."""
    import faiss

    from chatbot.ann import SQ8_NPROBE, StoredIvfSearch, ivf_cells

    path = workdir / f"sq8-ivf-{n}.faiss"
    if not path.is_file():
        print(f"building the 8-bit reference IVF in {path} ...", flush=True)
        vectors, nlist = index.vectors, ivf_cells(n)
        old = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist,
            faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        sample = np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)
        old.train(np.asarray(vectors[np.sort(sample)], dtype=np.float32))
        for start in range(0, n, 100_000):
            old.add(np.asarray(vectors[start : start + 100_000], dtype=np.float32))
        faiss.write_index(old, str(path))
    return StoredIvfSearch(path, SQ8_NPROBE)


def exact_top(ranker, queries: list[str], k: int = 10) -> list[set[int]]:
    """Each query's best ``k`` by the full score over every response (the semantic part
    included when the model has one), echo rules applied: what serving would return if it
    approximated nothing."""
    from chatbot.ranker import Query
    from chatbot.sentence import sentence_text
    from chatbot.text import split_turns

    scorer, index = ranker.scorer, ranker.index
    lexical_weight, semantic_weight = scorer.weights
    out = []
    for text in queries:
        q = Query(text, text.rsplit("__eot__", 1)[-1])
        vector = scorer.encoder.encode_contexts([q.context])[0]
        neural = np.empty(len(index), dtype=np.float32)
        for start in range(0, len(index), 100_000):
            block = np.asarray(index.vectors[start : start + 100_000], dtype=np.float32)
            neural[start : start + len(block)] = block @ vector
        rows = scorer.lexical.transform([q.context, q.last_turn])
        both = (index.lexical @ rows.T).toarray()  # (n, 2): context and last-turn cosines
        semantic = close = None
        if scorer.has_semantic:
            turns = split_turns(q.context)
            said, last = scorer.sentence.encode_queries(
                [sentence_text(turns, scorer.sentence.context_turns), turns[-1]]
            )
            said = scorer.sentence.adapt(said[None])[0]
            semantic, close = np.empty((2, len(index)), dtype=np.float32)
            for start in range(0, len(index), 100_000):
                block = np.asarray(index.sentence[start : start + 100_000], dtype=np.float32)
                semantic[start : start + len(block)] = block @ said
                close[start : start + len(block)] = block @ last
        scores = hybrid_score(
            neural, both[:, 0], lexical_weight, scorer.bias, semantic, semantic_weight
        )
        scores[both[:, 1] >= scorer.echo_cosine] = -np.inf
        if close is not None:
            scores[close >= scorer.semantic_echo_cosine] = -np.inf
        out.append(set(np.argsort(-scores)[:k].tolist()))
    return out


def recall_of_exact(
    ranker, queries: list[str], exact: list[set[int]], origins: np.ndarray
) -> tuple[float, float]:
    """The share of each query's exact best that ``ranker`` returns, averaged: by response,
    and by base text (a served variant of an exact response's base text counts for it)."""
    from chatbot.ranker import Query

    prepared = [Query(q, q.rsplit("__eot__", 1)[-1]) for q in queries]
    served = ranker.scorer.rank(
        [p.context for p in prepared], [p.last_turn for p in prepared], ranker.index,
        ranker.backend, 10,
    )  # fmt: skip
    by_response, by_base = [], []
    for row, want in zip(served, exact, strict=True):
        got = {i for i, _ in row}
        by_response.append(len(got & want) / len(want))
        bases = set(origins[list(want)].tolist())
        by_base.append(len(bases & set(origins[list(got)].tolist())) / len(bases))
    return float(np.mean(by_response)), float(np.mean(by_base))


def report(
    label: str,
    result: dict[str, np.ndarray],
    base_p50: float | None,
    recall: tuple[float, float] | None = None,
) -> float:
    p50, p99 = np.percentile(result["total"], [50, 99])
    ratio = f"{p50 / base_p50:6.3f}" if base_p50 else "     -"
    kept = f"{recall[0]:5.3f} (by base text {recall[1]:5.3f})" if recall else "    -"
    parts = "  ".join(
        f"{name} {np.percentile(result[name], 50):6.2f}" for name in STAGES if name in result
    )
    print(
        f"  {label:<34} p50 {p50:7.1f}  p99 {p99:7.1f}  ratio {ratio}  recall@10 of exact "
        f"{kept}   stages p50: {parts}",
        flush=True,
    )
    return float(p50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--calls", type=int, default=100, help="timed calls per configuration")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "chatbot-bench-served"
    )
    parser.add_argument("--no-before", action="store_true", help="skip the `before` line")
    parser.add_argument("--recall-queries", type=int, default=100)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    from chatbot.ranker import Ranker

    model_dir, model_line = served_model(args.workdir, args.csv)
    print(f"model: {model_line}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    print("milliseconds per call (batch 1) or per batch of 32 contexts")
    for n in args.sizes:
        index_dir, corpus = served_index(args.workdir, model_dir, n, args.csv)
        queries, source = corpus.queries, corpus.source
        raw = [q.replace(" __eou__", "").replace(" __eot__", "") for q in queries]
        served = Ranker.load(model_dir, index_dir)  # as `chatbot serve` (backend auto)
        served.warm_up(max(args.batches))
        print(f"\n{n:,} responses ({source}); served search: {served.backend.name}")
        variants = {"served": served}
        exact_search = served.backend
        if served.backend.name != "exact":
            exact_search = make_backend("exact", served.index.vectors)
            variants["served with exact neural search"] = rebuilt(served, backend=exact_search)
            old_ivf = sq8_reference(args.workdir, served.index, n)
            variants["8-bit IVF, 64 cells (before)"] = rebuilt(served, backend=old_ivf)
        if not args.no_before:  # exact search, lexical part by the full product
            full = dataclasses.replace(served.index, postings=FullProduct(served.index.lexical))
            variants = {"before": rebuilt(served, index=full, backend=exact_search), **variants}
        for ranker in variants.values():
            ranker.warm_up(max(args.batches))
        recalls: dict[str, tuple[float, float] | None] = dict.fromkeys(variants)
        if args.recall_queries > 0:  # 0: times only
            print(f"(exact top-10 of {args.recall_queries} queries by brute force ...)", flush=True)
            exact = exact_top(served, queries[: args.recall_queries])
            recalls = {
                name: recall_of_exact(ranker, queries[: args.recall_queries], exact, corpus.origins)
                for name, ranker in variants.items()
            }
        for batch in args.batches:
            calls = args.calls if batch == 1 else max(5, args.calls // 4)
            base = None
            for name, ranker in variants.items():
                # The full product takes seconds a batch at 1M: a few calls say enough.
                few = min(calls, 20 if batch == 1 else 3) if name == "before" else calls
                result = measure(ranker, queries, raw, batch, few)
                p50 = report(f"{name}, batch {batch}", result, base, recalls[name])
                base = p50 if name == "before" else base
        del served, variants
        neural_model, neural_index = neural_reference(args.workdir, n)
        reference = Ranker.load(neural_model, neural_index)
        reference.warm_up(max(args.batches))
        for batch in args.batches:
            calls = args.calls if batch == 1 else max(5, args.calls // 4)
            report(
                f"neural-only reference, batch {batch}",
                measure(reference, queries, raw, batch, calls),
                None,
            )
        del reference


if __name__ == "__main__":
    main()
