"""Answers raw contexts with the best responses of a pre-encoded repository."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from chatbot.ann import ANN_FILE, StoredIvfSearch
from chatbot.artifact import Artifact, lists_lite, load_artifact
from chatbot.calibration import UNCALIBRATED, Calibration
from chatbot.errors import ArtifactError
from chatbot.index import ResponseIndex, load_index, read_manifest
from chatbot.lite import RUNTIMES
from chatbot.scoring import Scorer
from chatbot.search import (
    SearchBackend,
    gpu_device_present,
    has_gpu,
    make_backend,
    padded_query_rows,
    stored_precision,
)
from chatbot.text import Normalizer
from chatbot.timing import StageTimes

if TYPE_CHECKING:
    from chatbot.encoder import TextEncoder

log = logging.getLogger(__name__)


def served_search(
    index: ResponseIndex, backend: str = "auto", gpu: bool | None = None
) -> SearchBackend:
    """The neural search over ``index`` that serving uses: for ``auto``, exact on a GPU; on a
    CPU the index's stored approximate index when it has one (:mod:`chatbot.ann`), else
    exact. Any other name is that backend (:func:`chatbot.search.make_backend`).
    ``gpu``: whether there is one, when known (else TensorFlow is asked)."""
    if backend == "auto" and index.ann_path is not None and not (has_gpu() if gpu is None else gpu):
        return StoredIvfSearch.from_manifest(
            index.ann_path, index.manifest.get("ann", {}), index.rescoring_vectors
        )
    return make_backend("exact" if backend == "auto" else backend, index.vectors)


def serving_runtime(runtime: str, model_dir: str | Path) -> str:
    """``lite`` or ``tensorflow``: where the encoders of the artifact at ``model_dir`` run
    for ``runtime`` (one of :data:`~chatbot.lite.RUNTIMES`). ``auto`` is LiteRT when the
    artifact has its converted encoders and no GPU is visible (with a GPU, TensorFlow
    searches on it).

    Raises:
        ArtifactError: ``lite`` for an artifact without converted encoders.
        ValueError: an unknown runtime.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {RUNTIMES}")
    has_lite = lists_lite(model_dir)
    if runtime == "lite" and not has_lite:
        raise ArtifactError(
            f"{model_dir}: has no LiteRT encoders for runtime 'lite' "
            f"(add them: `chatbot lite --model {model_dir}`)"
        )
    if runtime == "auto":
        return "lite" if has_lite and not gpu_device_present() else "tensorflow"
    return runtime


@dataclass(frozen=True)
class Hit:
    """One ranked response."""

    text: str
    score: float


@dataclass(frozen=True)
class Query:
    """A context as the model reads it: made by :meth:`Ranker.prepare`, off the model thread."""

    context: str  # the normalised context
    last_turn: str  # its normalised last turn, for the echo rule
    said: frozenset[str] = frozenset()  # the turns as sent (stripped): never said again
    # The turns as sent, oldest first: what the sentence encoder reads (None: the
    # normalised turns of ``context``).
    turns: tuple[str, ...] | None = None


def _raw_turns(queries: Sequence[Query]) -> list[tuple[str, ...]] | None:
    """Each query's turns as sent, or ``None`` (the scorer reads the normalised contexts)
    when a query was not prepared from raw turns."""
    turns = [q.turns for q in queries]
    return None if any(t is None for t in turns) else [t for t in turns if t is not None]


class Ranker:
    """Normalises raw contexts and ranks repository responses (or given candidates) for them.

    Scores are the model's logits (:mod:`chatbot.scoring`); ``σ(score)`` is its probability
    that the response follows the context.

    Example::

        ranker = Ranker.load("artifacts/default/model", "artifacts/default/index")
        ranker.respond([["hi, how are you?"]], k=3)[0][0].text
    """

    def __init__(
        self,
        scorer: Scorer,
        normalizer: Normalizer,
        index: ResponseIndex,
        backend: SearchBackend,
        model_version: str,
        artifact: Artifact | None = None,
    ) -> None:
        self.scorer = scorer
        self.artifact = artifact  # what the scorer came from (index edits need it)
        self.normalizer = normalizer
        self.index = index
        self.backend = backend
        self.model_version = model_version
        # How sure the best reply is (chatbot.calibration); σ(score) for an uncalibrated model.
        self.calibration: Calibration = artifact.calibration if artifact else UNCALIBRATED

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        index_dir: str | Path,
        backend: str = "auto",
        spares: list[TextEncoder] | None = None,
        runtime: str = "auto",
        threads: int = 1,
    ) -> Ranker:
        """Loads a model artifact and its index; both are checked (see ``chatbot.artifact``).

        ``auto`` searches exactly on a GPU; on a CPU, with the index's stored approximate
        index when it has one (large repositories, :mod:`chatbot.ann`), else exactly.
        ``spares``: encoders no longer in use; one that fits the model is taken from the
        list and recycled (:meth:`TextEncoder.recycled_for`), which skips its compilations.
        ``runtime``: where the encoders run (:func:`serving_runtime`); on LiteRT, with
        ``threads`` threads, and TensorFlow is not imported unless ``backend`` needs it.
        """
        lite = serving_runtime(runtime, model_dir) == "lite"
        artifact = load_artifact(model_dir, network=False)
        gpu = False if lite else None  # LiteRT runs on a CPU: no need to ask TensorFlow
        manifest = read_manifest(index_dir)
        if lite and backend == "auto" and ANN_FILE not in manifest.get("files", {}):
            backend = "numpy"  # exact, without TensorFlow (a small index: no stored ANN)
        n_values = int(manifest["n"]) * int(manifest["dim"])
        index = load_index(index_dir, artifact, precision=stored_precision(backend, n_values, gpu))
        search = served_search(index, backend, gpu)
        scorer = artifact.scorer(lite_threads=threads if lite else None)
        spare = None
        if not lite:  # a spare is a compiled TensorFlow encoder
            spare = next((e for e in spares or () if e.fits(artifact.model, artifact.config)), None)
        if spare is not None and spares is not None:
            spares.remove(spare)
            encoder = spare.recycled_for(artifact.model, artifact.vocab, artifact.config)
            scorer = scorer.with_encoder(encoder)
        return cls(
            scorer,
            Normalizer(artifact.config.normalization),
            index,
            search,
            artifact.version,
            artifact,
        )

    def prepare(self, context: Sequence[str]) -> Query:
        """Normalises a raw context (a list of turns, oldest first). Thread-safe: the service
        calls it in the request handler, so that the model thread only encodes and searches."""
        return Query(
            self.normalizer.context(context),
            self.normalizer.normalize(context[-1]),
            frozenset(turn.strip() for turn in context),
            tuple(context),
        )

    def respond_prepared(
        self, queries: Sequence[Query], k: int, times: StageTimes | None = None
    ) -> list[list[Hit]]:
        """Top-k repository responses for each prepared context; ``times`` gets each
        stage's seconds.

        A response that is already one of the conversation's turns (the bot's own earlier
        reply, sent back by the chat widget, or the user's words) is not given again.
        """
        contexts = [q.context for q in queries]
        last_turns = [q.last_turn for q in queries]
        extra = max(len(q.said) for q in queries)  # each said text can hide one response
        ranked = self.scorer.rank(
            contexts,
            last_turns,
            self.index,
            self.backend,
            k + extra,
            times,
            raw_turns=_raw_turns(queries),
        )
        texts = self.index.texts
        out = []
        for query, row in zip(queries, ranked, strict=True):
            hits = (Hit(texts[i], score) for i, score in row)
            out.append([hit for hit in hits if hit.text.strip() not in query.said][:k])
        return out

    def respond(self, contexts: Sequence[Sequence[str]], k: int) -> list[list[Hit]]:
        """Top-k repository responses for each raw context (a list of turns, oldest first)."""
        return self.respond_prepared([self.prepare(turns) for turns in contexts], k)

    def rank_candidates(
        self, context: Sequence[str], candidates: Sequence[str], k: int
    ) -> list[Hit]:
        """The caller's candidates, scored by the same model, top-k best first."""
        return self.rank_prepared_candidates(self.prepare(context), candidates, k)

    def rank_prepared_candidates(
        self, query: Query, candidates: Sequence[str], k: int
    ) -> list[Hit]:
        """:meth:`rank_candidates` for a context :meth:`prepare` normalised already."""
        responses = [self.normalizer.response(t) for t in candidates]
        scores = self.scorer.pair_scores(
            [query.context],
            [responses],
            raw_turns=None if query.turns is None else [query.turns],
            raw_candidates=[list(candidates)],
        )[0]  # (candidates,)
        best = np.argsort(-scores, kind="stable")[:k]
        return [Hit(candidates[i], float(scores[i])) for i in best]

    def warm_up(self, max_batch_size: int, k: int = 10) -> float:
        """Compiles every input shape a batch of up to ``max_batch_size`` contexts can meet
        (the encoder's padded shapes, the search's padded query rows), so that no request
        waits for an XLA compilation (about 0.5 s each). Returns the seconds it took."""
        start = time.perf_counter()
        warm_encoder = getattr(self.scorer.encoder, "warm_up", None)  # both runtimes have one
        shapes = warm_encoder(max_batch_size) if warm_encoder is not None else 0
        sizes = {padded_query_rows(n): n for n in range(1, max_batch_size + 1)}
        dim = self.index.dim
        for n in sizes.values():
            self.backend.search(np.zeros((n, dim), dtype=np.float32), k)
        self.respond([["hello"]], k)  # the whole path once, lexical part included
        took = time.perf_counter() - start
        log.info(
            "warm-up: %d encoder and %d search shapes (batches of up to %d) in %.1f s",
            shapes,
            len(sizes),
            max_batch_size,
            took,
        )
        return took
