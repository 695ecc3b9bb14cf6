"""The service's real job, measured: pick each row's reply from the whole response repository.

1-in-10 rows (:mod:`training.evaluate`) cannot see a bot that restates the question, because
random distractors never restate the context. Here each row's true response is ranked against
**every** response of an index, with the model's exact full score (the served path may
approximate; this does not):

* ``recall@1/10/100``, MRR and the median rank of the true response (ties count against it;
  repository entries with the true response's own text are left out);
* ``recall@1_of_100``: 1 in 100, with 99 seeded random repository responses as distractors;
* ``served_recall@10_of_exact`` (the model only): how many of each row's 10 best responses
  by the exact full score (under the echo rule) the served ranking returns too. Serving
  re-scores only the union of each part's best (:meth:`chatbot.scoring.Scorer.rank`), reads
  only the heaviest postings of common words (:mod:`chatbot.postings`) and, for a large
  index, takes the neural part's best from its stored ANN (:mod:`chatbot.ann`);
* the **echo rate** of the reply the bot would give (its top-1: TF-IDF cosine of at least
  :data:`ECHO_REPORT_COSINE` with the user's last turn) and its **question rate** (a ``?`` in
  it), each beside the same rate for the true responses. For the model the top-1 is the
  served one (:meth:`chatbot.scoring.Scorer.rank`, echo rule included); for the parts of a
  hybrid and the baseline it is the plain best score. A model with a sentence encoder also
  gets the **semantic echo rate** (sentence cosine of at least
  :data:`SEMANTIC_ECHO_REPORT_COSINE` with the last turn: a restatement in other words).

Systems: ``model`` (the full score); for a hybrid model also ``model_neural`` and
``model_lexical`` (each part alone), and ``model_semantic`` for a model with a sentence
encoder (:mod:`chatbot.sentence`, its part alone); and the ``tfidf`` baseline (a vectoriser
fitted on the repository and the contexts, as Lowe et al. fit theirs on the evaluated texts).

Example::

    report = evaluate_repository(rows, scorer, index, Normalizer("udc"))
    report["systems"]["model"]["recall@10"]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from chatbot.calibration import Calibration
from chatbot.index import ResponseIndex
from chatbot.lexical import TfidfModel, rowwise_dot
from chatbot.ranker import served_search
from chatbot.scoring import Scorer, context_sentences, hybrid_score, sentence_of_normalized
from chatbot.text import EOU, Normalizer, split_turns
from training.calibration import calibration_report, served_examples
from training.raw_text import RawText, all_raw
from training.sources.udc_csv import EvalRow

log = logging.getLogger(__name__)

KS = (1, 10, 100)
N_RANDOM_DISTRACTORS = 99
# A reply this close (TF-IDF cosine) to the user's last turn counts as an echo in the report.
ECHO_REPORT_COSINE = 0.5
# A reply this close by the sentence cosine counts as a restatement in other words: 2.9 %
# of the chitchat bot's true replies and 0.7 % of the Ubuntu model's reach it, against 5.2 %
# and 2.1 % of their top-1 replies with the semantic part and no rule (validation rows,
# stop 20; docs/results.md).
SEMANTIC_ECHO_REPORT_COSINE = 0.7
_CHUNK_ROWS = 64  # rows scored against the whole repository at once
# The served ranking's best this many are compared with the exact ones ("recall@10 of exact").
SERVED_K = 10


@dataclass(frozen=True)
class _System:
    """A score ``neural_part × (cᵀMr + b) + lexical_weight × cosine + semantic_weight ×
    sentence cosine`` (the model's own TF-IDF and sentence encoder)."""

    name: str
    neural: bool
    lexical_weight: float
    semantic_weight: float = 0.0


@dataclass(frozen=True)
class _Job:
    """Evaluation rows made ready for ranking against a repository."""

    repo: list[str]  # the repository's normalised texts
    contexts: list[str]
    truths: list[str]
    last_turns: list[str]
    duplicates: list[np.ndarray]  # per row, the repository rows holding its true reply
    distractors: np.ndarray  # per row, 1-in-100 distractors
    raw: list[RawText] | None  # the rows as people wrote them, when the data build kept them

    @property
    def raw_turns(self) -> list[tuple[str, ...]] | None:
        """Each context's turns as people wrote them (what the sentence encoder reads)."""
        return None if self.raw is None else [r.turns for r in self.raw]


@dataclass(frozen=True)
class _Sentences:
    """The sentence vectors a job's rows need for the semantic part, made once: the contexts'
    (their last turns as the encoder reads a query), the last turns' (for the echo rules and
    rates), and the true responses' (as the repository holds them)."""

    contexts: np.ndarray
    last_turns: np.ndarray
    truths: np.ndarray


def _job(rows: Sequence[EvalRow], index: ResponseIndex, normalizer: Normalizer, seed: int) -> _Job:
    if not rows:
        raise ValueError("no evaluation rows")
    repo = repository_texts(index, normalizer)
    contexts = [row.context for row in rows]
    truths = [row.response for row in rows]
    duplicates = _duplicates(repo, truths)
    return _Job(
        repo=repo,
        contexts=contexts,
        truths=truths,
        last_turns=[(split_turns(c) or [""])[-1] for c in contexts],
        duplicates=duplicates,
        distractors=_random_distractors(len(repo), duplicates, seed),
        raw=all_raw(rows),
    )


def repository_texts(index: ResponseIndex, normalizer: Normalizer) -> list[str]:
    """The index's responses as the model saw them (stored ones, else rebuilt).

    Example:
        >>> index = ResponseIndex(np.zeros((2, 1)), ["Hi there", "a\\nb"], {"display": "raw"})
        >>> repository_texts(index, Normalizer("tokenize"))
        ['hi there __eou__', 'a b __eou__']
    """
    if index.normalized is not None:
        return list(index.normalized)  # read once: the evaluation goes over them many times
    if index.shows_normalized_text:  # one utterance a line (training.responses.display_text)
        return [" ".join(f"{u} {EOU}" for u in t.split("\n")) for t in index.texts]
    return [normalizer.response(t) for t in index.texts]


def is_question(text: str) -> bool:
    """Asks something: a ``?`` in it.

    Example:
        >>> is_question("did you try sudo ?"), is_question("yes it works")
        (True, False)
    """
    return "?" in text


def evaluate_repository(
    rows: Sequence[EvalRow],
    scorer: Scorer | None,
    index: ResponseIndex,
    normalizer: Normalizer,
    baselines: Sequence[str] = ("tfidf",),
    seed: int = 0,
    progress: bool = True,
    calibration: Calibration | None = None,
) -> dict:
    """Ranks each row's true response against the whole repository (see the module doc).

    Args:
        rows: evaluation rows (only the context and the true response are used).
        scorer: the model, or ``None`` for baselines only.
        index: the response repository (built by the same model when ``scorer`` is given).
        normalizer: the model's text normalisation, for indexes without stored normalised text.
        baselines: ``tfidf`` or nothing.
        seed: seeds the 1-in-100 distractors.
        progress: show a progress bar.
        calibration: the model's confidence curves, measured on the served ranking made here
            (:func:`training.calibration.calibration_report`) under ``"calibration"``.

    Returns:
        ``{"n", "repository_size", "true_in_repository", "true_responses", "systems"}``
        (and ``"calibration"``).
    """
    unknown = set(baselines) - {"tfidf"}
    if unknown:
        raise ValueError(f"unknown repository baselines {sorted(unknown)}; choose from tfidf")
    job = _job(rows, index, normalizer, seed)
    repo, contexts, truths, last_turns = job.repo, job.contexts, job.truths, job.last_turns
    duplicates, distractors = job.duplicates, job.distractors

    # The echo judge: one TF-IDF model for every system, fitted on the repository.
    judge = TfidfModel.fit(repo)
    last_vectors = judge.transform(last_turns)

    def reply_rates(replies: Sequence[str]) -> dict[str, float]:
        cosine = rowwise_dot(last_vectors, judge.transform(list(replies)))
        return {
            "echo_rate": float(np.mean(cosine >= ECHO_REPORT_COSINE)),
            "question_rate": float(np.mean([is_question(t) for t in replies])),
        }

    report: dict = {
        "n": len(rows),
        "repository_size": len(repo),
        "true_in_repository": float(np.mean([len(d) > 0 for d in duplicates])),
        "true_responses": reply_rates(truths),
        "systems": {},
    }
    if scorer is not None:
        systems = [_System("model", True, *scorer.weights)]
        if scorer.is_hybrid or scorer.has_semantic:
            systems += [_System("model_neural", True, 0.0), _System("model_lexical", False, 1.0)]
        if scorer.sentence is not None:
            systems.append(_System("model_semantic", False, 0.0, 1.0))
        exact_top = np.full((len(rows), SERVED_K), -1, dtype=np.int64)
        sentences = _sentences(scorer, index, job)
        scored = _score_model(scorer, index, job, systems, exact_top, progress, sentences)
        # The neural search serving uses (a large index's stored ANN), so its loss counts.
        served = scorer.rank(
            contexts, last_turns, index, served_search(index), SERVED_K, raw_turns=job.raw_turns
        )
        top1 = {"model": [row[0][0] if row else -1 for row in served]}
        for system in systems:
            ranks, best, wins = scored[system.name]
            top1.setdefault(system.name, best.tolist())
            report["systems"][system.name] = _metrics(ranks, wins)
        report["systems"]["model"][f"served_recall@{SERVED_K}_of_exact"] = _overlap(
            served, exact_top
        )
        for name, ids in top1.items():
            replies = [repo[i] if i >= 0 else "" for i in ids]
            report["systems"][name].update(reply_rates(replies))
        if sentences is not None:
            _add_semantic_echo_rates(report, sentences, index, top1)
        if calibration is not None:
            examples = served_examples(rows, served, scorer, repo)
            curve = calibration.curve("repository")
            report["calibration"] = calibration_report(curve, examples, calibration.fitted)
    if "tfidf" in baselines:
        tfidf = TfidfModel.fit([*repo, *contexts])
        repo_rows = tfidf.transform(repo)
        context_rows = tfidf.transform(contexts)
        ranks, best, wins = _rank_all(
            lambda part: {"tfidf": (context_rows[part] @ repo_rows.T).toarray()},
            {"tfidf": rowwise_dot(context_rows, tfidf.transform(truths))},
            duplicates,
            distractors,
            progress,
        )["tfidf"]
        metrics = _metrics(ranks, wins)
        metrics.update(reply_rates([repo[i] for i in best]))
        report["systems"]["tfidf"] = metrics
    return report


def weight_table(
    rows: Sequence[EvalRow],
    scorer: Scorer,
    index: ResponseIndex,
    normalizer: Normalizer,
    weights: Sequence[float],
    progress: bool = True,
) -> list[dict[str, float]]:
    """Repository MRR, recall@k and median rank of the true response for each lexical weight
    of a hybrid score (the model's neural part plus ``weight`` × its TF-IDF cosine), from
    one pass of the model: what tuning the weight for the service's real job needs."""
    job = _job(rows, index, normalizer, seed=0)
    _, semantic_weight = scorer.weights
    systems = [_System("model", True, *scorer.weights)]
    systems += [_System(f"w={w:g}", True, float(w), semantic_weight) for w in weights]
    exact_top = np.full((len(rows), 1), -1, dtype=np.int64)
    sentences = _sentences(scorer, index, job)
    scored = _score_model(scorer, index, job, systems, exact_top, progress, sentences)
    table = []
    for system in systems[1:]:
        ranks, _, wins = scored[system.name]
        table.append({"weight": system.lexical_weight, **_metrics(ranks, wins)})
    return table


def _duplicates(repo: Sequence[str], truths: Sequence[str]) -> list[np.ndarray]:
    """For each true response, the repository rows holding the same text."""
    where: dict[str, list[int]] = {}
    for i, text in enumerate(repo):
        where.setdefault(text, []).append(i)
    return [np.asarray(where.get(t, []), dtype=np.int64) for t in truths]


def _random_distractors(n: int, duplicates: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """For each row, :data:`N_RANDOM_DISTRACTORS` distinct repository rows, none of them a
    duplicate of its true response: ``(rows, 99)``."""
    rng = np.random.default_rng(seed)
    k = min(N_RANDOM_DISTRACTORS, n)
    out = np.empty((len(duplicates), k), dtype=np.int64)
    for r, dup in enumerate(duplicates):
        pool = rng.choice(n, size=min(n, k + len(dup)), replace=False)
        pool = pool[~np.isin(pool, dup)][:k]
        if len(pool) < k:  # a tiny repository that is mostly this row's duplicates
            pool = np.resize(pool, k) if len(pool) else np.zeros(k, dtype=np.int64)
        out[r] = pool
    return out


def _overlap(served: Sequence[Sequence[tuple[int, float]]], exact_top: np.ndarray) -> float:
    """The share of each row's exact best that the served ranking also returned, averaged.

    Example:
        >>> _overlap([[(1, 0.0), (2, 0.0)], [(3, 0.0)]], np.array([[1, 5], [3, -1]]))
        0.75
    """
    shares = []
    for row, exact in zip(served, exact_top, strict=True):
        want = set(exact[exact >= 0].tolist())
        got = {i for i, _ in row}
        shares.append(len(want & got) / len(want) if want else 1.0)
    return float(np.mean(shares))


def _score_model(
    scorer: Scorer,
    index: ResponseIndex,
    job: _Job,
    systems: Sequence[_System],
    exact_top: np.ndarray,
    progress: bool,
    sentences: _Sentences | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Ranks, plain top-1 ids and 1-in-100 wins of every system, from one pass of the model
    (``sentences``: its semantic part's vectors, :func:`_sentences`).

    Fills ``exact_top`` with each row's best ``exact_top.shape[1]`` responses by the model's
    exact full score under the echo rule: what serving would return if it approximated
    nothing."""
    contexts, last_turns, truths = job.contexts, job.last_turns, job.truths
    encoder = scorer.encoder
    queries = encoder.encode_contexts(contexts)  # (rows, d)
    truth_vectors = encoder.encode_responses(truths)  # (rows, d)
    true_neural = np.einsum("nd,nd->n", queries, truth_vectors)  # (rows,)
    lexical, repo_rows = scorer.lexical, index.lexical
    if lexical is not None and repo_rows is None:
        raise ValueError("a hybrid model needs an index with lexical (TF-IDF) rows")
    true_cosine = np.zeros(len(contexts), dtype=np.float32)
    context_rows = last_rows = None
    if lexical is not None:
        context_rows = lexical.transform(contexts)
        last_rows = lexical.transform(last_turns)
        true_cosine = rowwise_dot(context_rows, lexical.transform(truths)).astype(np.float32)
    echo_rule = last_rows is not None and scorer.echo_cosine <= 1.0
    true_semantic = None
    if sentences is not None:
        true_semantic = np.einsum("nd,nd->n", sentences.contexts, sentences.truths)
    semantic_echo = echo_rule and sentences is not None and scorer.semantic_echo_cosine <= 1.0
    # Stored as float16 (chatbot.index): converted once, not once per chunk of rows.
    repo_sentences = None if index.sentence is None else np.asarray(index.sentence, np.float32)

    def system_scores(part: np.ndarray) -> dict[str, np.ndarray]:
        # The parts once per chunk of rows, then every system's score from them.
        neural = queries[part] @ index.vectors.T  # (chunk, N)
        cosine = np.zeros_like(neural)
        if context_rows is not None and repo_rows is not None:
            cosine = (context_rows[part] @ repo_rows.T).toarray().astype(np.float32)
        semantic = None
        if sentences is not None and repo_sentences is not None:
            semantic = sentences.contexts[part] @ repo_sentences.T
        scores = {s.name: _system_score(s, neural, cosine, scorer.bias, semantic) for s in systems}
        served = scores["model"].copy()
        if echo_rule and last_rows is not None and repo_rows is not None:
            echo = (last_rows[part] @ repo_rows.T).toarray() >= scorer.echo_cosine
            if semantic_echo and sentences is not None and repo_sentences is not None:
                close = sentences.last_turns[part] @ repo_sentences.T
                echo |= close >= scorer.semantic_echo_cosine
            served[echo] = -np.inf
        k = min(exact_top.shape[1], served.shape[1])
        best = np.argpartition(-served, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(served, best, 1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, 1)
        best[~np.isfinite(np.take_along_axis(served, best, 1))] = -1  # fewer than k allowed
        exact_top[part, :k] = best
        return scores

    true_scores = {
        s.name: _system_score(s, true_neural, true_cosine, scorer.bias, true_semantic)
        for s in systems
    }
    return _rank_all(system_scores, true_scores, job.duplicates, job.distractors, progress)


def _add_semantic_echo_rates(
    report: dict, sentences: _Sentences, index: ResponseIndex, top1: dict[str, list[int]]
) -> None:
    """Adds the **semantic echo rate**: the share of top-1 replies whose sentence cosine with
    the user's last turn is at least :data:`SEMANTIC_ECHO_REPORT_COSINE` (a restatement in
    other words), for every system and for the true replies."""
    assert index.sentence is not None
    last = sentences.last_turns

    def rate(vectors: np.ndarray, present: np.ndarray) -> float:
        close = np.einsum("nd,nd->n", last, vectors) >= SEMANTIC_ECHO_REPORT_COSINE
        return float(np.mean(close & present))

    truths = sentences.truths
    report["true_responses"]["semantic_echo_rate"] = rate(truths, np.ones(len(last), bool))
    for name, ids in top1.items():
        found = np.asarray(ids) >= 0
        vectors = np.asarray(index.sentence[np.where(found, ids, 0)], dtype=np.float32)
        report["systems"][name]["semantic_echo_rate"] = rate(vectors, found)


def _sentences(scorer: Scorer, index: ResponseIndex, job: _Job) -> _Sentences | None:
    """The job's sentence vectors (:class:`_Sentences`), or ``None`` without a sentence
    encoder. A true response in the repository is read as the repository holds it (the
    vector of its shown text), so that it is scored as its duplicates are; one that is not
    is read from its normalised form."""
    sentence = scorer.sentence
    if sentence is None:
        return None
    if index.sentence is None:
        raise ValueError("the model's semantic part needs an index with sentence vectors")
    turns: Sequence[Sequence[str]] = job.raw_turns or [split_turns(c) for c in job.contexts]
    contexts, last_turns = context_sentences(sentence, turns)
    truths = np.empty((len(job.truths), index.sentence.shape[1]), dtype=np.float32)
    held = [i for i, dup in enumerate(job.duplicates) if len(dup)]
    missing = [i for i, dup in enumerate(job.duplicates) if len(dup) == 0]
    if held:
        truths[held] = index.sentence[[int(job.duplicates[i][0]) for i in held]]
    if missing:
        said = [
            job.raw[i].candidates[0] if job.raw else sentence_of_normalized(job.truths[i])
            for i in missing
        ]
        truths[missing] = sentence.encode(said)
    return _Sentences(contexts, last_turns, truths)


def _system_score(
    system: _System,
    neural: np.ndarray,
    cosine: np.ndarray,
    bias: float,
    semantic: np.ndarray | None = None,
) -> np.ndarray:
    if not system.neural:
        score: np.ndarray = np.float32(system.lexical_weight) * cosine
        if semantic is not None and system.semantic_weight:
            score = score + np.float32(system.semantic_weight) * semantic
        return score
    return hybrid_score(
        neural, cosine, system.lexical_weight, bias, semantic, system.semantic_weight
    )


def _rank_all(
    score_rows: Callable[[np.ndarray], dict[str, np.ndarray]],
    true_scores: dict[str, np.ndarray],
    duplicates: Sequence[np.ndarray],
    distractors: np.ndarray,
    progress: bool,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For every system and row: the true response's rank among all repository rows, the best
    repository row, and whether it beats its 1-in-100 ``distractors``.

    ``score_rows(part)`` gives each system's ``(len(part), N)`` scores of the rows ``part``;
    ``true_scores`` each system's scores of the true responses.
    """
    n_rows = len(duplicates)
    out = {
        name: (np.empty(n_rows, np.int64), np.empty(n_rows, np.int64), np.empty(n_rows, bool))
        for name in true_scores
    }
    starts = range(0, n_rows, _CHUNK_ROWS)
    for start in tqdm(starts, desc="repository", unit="chunk", disable=not progress):
        part = np.arange(start, min(start + _CHUNK_ROWS, n_rows))
        for name, scores in score_rows(part).items():  # (chunk, N) each
            ranks, best, wins = out[name]
            best[part] = np.argmax(scores, axis=1)
            beaten = scores >= true_scores[name][part, None]  # ties count against the truth
            for j, r in enumerate(part):
                beaten[j, duplicates[r]] = False
            ranks[part] = 1 + beaten.sum(axis=1)
            wins[part] = ~np.take_along_axis(beaten, distractors[part], axis=1).any(axis=1)
    return out


def _metrics(ranks: np.ndarray, wins_of_100: np.ndarray) -> dict[str, float]:
    """Recall@k, MRR, median rank and 1-in-100 recall@1.

    Example:
        >>> m = _metrics(np.array([1, 5, 200]), np.array([True, False, False]))
        >>> m["recall@1"], m["recall@10"], m["median_rank"], round(m["recall@1_of_100"], 3)
        (0.3333333333333333, 0.6666666666666666, 5.0, 0.333)
    """
    out = {f"recall@{k}": float(np.mean(ranks <= k)) for k in KS}
    out["mrr"] = float(np.mean(1.0 / ranks))
    out["median_rank"] = float(np.median(ranks))
    out["recall@1_of_100"] = float(np.mean(wins_of_100))
    return out
