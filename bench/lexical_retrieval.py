"""Lexical top-N retrieval over a large repository, side by side, to choose the served one.

For ``--sizes`` responses (real utterances grown with variants, ``bench/_served_corpus.py``)
and ``--queries`` real contexts, one query at a time, top ``--depth`` (the hybrid's
re-rank depth, 256):

* ``full-product`` (the baseline of the ratios): the query's TF-IDF row times every response
  row (scipy), then a sort of the non-zeros; what serving did before.
* ``postings``: ``chatbot/postings.py``, the same TF-IDF cosine from impact-ordered
  postings, then the best candidates re-scored exactly: ``M per word`` reads at most ``M``
  postings of each query word; ``budget B`` (what serving uses, B = 32,768) shares B among
  the query's words by squared weight, at most 4,096 each.
* ``bm25s``: the bm25s library (BM25 on scipy sparse matrices, numpy top-k).
* ``tantivy``: the Tantivy search engine (Rust; BM25 with block-max WAND), an in-RAM index.

Each line gives the build time, p50/p99 ms per query, the ratio of p50 to the baseline's,
and ``recall``: how many of the exact TF-IDF top-10 (the baseline's) are among the returned
``--depth``; the hybrid re-scores that union, so a response missing here cannot be served.

Run: ``.venv/bin/python bench/lexical_retrieval.py`` (``--sizes 100000`` to shrink).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench._served_corpus import DEFAULT_CSV, served_corpus
from chatbot.lexical import TfidfModel
from chatbot.postings import Postings
from chatbot.text import MARKERS

MODEL_LEXICAL = Path("artifacts/ubuntu/model/lexical.json")


def tokens(text: str) -> list[str]:
    return [t for t in text.split() if t not in MARKERS]


def timed(fn, queries) -> tuple[list[np.ndarray], np.ndarray]:
    out, times = [], []
    for q in queries:
        start = time.perf_counter()
        out.append(np.asarray(fn(q)))
        times.append((time.perf_counter() - start) * 1000)
    return out, np.array(times)


def recall(found: list[np.ndarray], exact: list[np.ndarray], at: int = 10) -> float:
    hits = [
        len(set(e[:at].tolist()) & set(f.tolist())) / max(1, len(e[:at]))
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(hits))


def run(n: int, args: argparse.Namespace) -> None:
    corpus = served_corpus(n, args.csv, args.queries, args.seed)
    texts, contexts, source = corpus.texts, corpus.queries, corpus.source
    print(f"\n== {n:,} responses ({source}), {len(contexts)} queries, top {args.depth}")
    tfidf = TfidfModel.load(MODEL_LEXICAL) if MODEL_LEXICAL.is_file() else TfidfModel.fit(texts)
    start = time.perf_counter()
    rows = tfidf.transform(texts)
    print(f"TF-IDF rows: {rows.nnz:,} non-zeros, {time.perf_counter() - start:.1f} s")
    queries = [tfidf.transform([c]) for c in contexts]
    depth = args.depth

    def full_product(q):
        row = (q @ rows.T).tocsr()
        return row.indices[np.argsort(-row.data, kind="stable")[:depth]]

    exact, base_ms = timed(full_product, queries)
    touched = np.mean([(q @ rows.T).nnz for q in queries[:20]])
    lines = [("full-product", 0.0, base_ms, 1.0)]
    print(f"(the full product touches {touched:,.0f} responses per query on average)")

    start = time.perf_counter()
    postings = Postings.from_rows(rows)
    built = time.perf_counter() - start
    for cut in args.max_postings:
        found, ms = timed(lambda q, c=cut: postings.top(q, rows, depth, c, budget=None)[0], queries)
        lines.append((f"postings {cut} per word", built, ms, recall(found, exact)))
    for budget in args.budget:
        found, ms = timed(lambda q, b=budget: postings.top(q, rows, depth, budget=b)[0], queries)
        lines.append((f"postings budget {budget}", built, ms, recall(found, exact)))

    import bm25s

    start = time.perf_counter()
    retriever = bm25s.BM25()
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in tokens(text)] for text in texts]
    retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    built = time.perf_counter() - start
    query_tokens = [[t for t in tokens(c) if t in vocab] for c in contexts]

    def bm25(q):
        if not q:
            return np.zeros(0, np.int64)
        found = retriever.retrieve([q], k=min(depth, n), show_progress=False, return_as="documents")
        return found[0]

    found, ms = timed(bm25, query_tokens)
    lines.append(("bm25s", built, ms, recall(found, exact)))

    import tantivy

    start = time.perf_counter()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=512_000_000, num_threads=1)
    for text in texts:
        writer.add_document(tantivy.Document(body=" ".join(tokens(text))))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()
    built = time.perf_counter() - start

    def engine(q):
        words = list(dict.fromkeys(q))
        if not words:
            return np.zeros(0, np.int64)
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", w)) for w in words]
        )
        return [address.doc for _, address in searcher.search(query, depth).hits]

    found, ms = timed(engine, query_tokens)
    # A hit's doc number is its insertion order only in a one-segment index: the line says.
    lines.append((f"tantivy ({searcher.num_segments} segment)", built, ms, recall(found, exact)))

    print(f"{'system':<22}{'build s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50 ratio':>11}{'recall':>8}")
    for name, build_s, ms, rec in lines:
        p50, p99 = np.percentile(ms, [50, 99])
        ratio = p50 / np.percentile(base_ms, 50)
        print(f"{name:<22}{build_s:>9.1f}{p50:>9.2f}{p99:>9.2f}{ratio:>11.3f}{rec:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--depth", type=int, default=256)
    parser.add_argument("--max-postings", type=int, nargs="*", default=[1024, 4096])
    parser.add_argument("--budget", type=int, nargs="*", default=[16_384, 32_768, 65_536])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n in args.sizes:
        run(n, args)


if __name__ == "__main__":
    main()
