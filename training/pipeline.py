"""The offline pipeline, one for every bot: data → vocabulary → word vectors → train → hybrid
→ semantic part → index → evaluate.

Each step is a plain function of files in, files out. A :class:`Recipe` says what differs
between bots (where the data comes from, which validation and test sets, which file holds the
response repository, whether to start from word2vec vectors); :mod:`training.recipes` holds the
default chitchat bot and the Ubuntu support model. Outputs, under ``out``::

    data/            train.csv, valid.csv, test.csv (+ the repository file, sentences.txt,
                     the Ubuntu recipe's pairs.raw.jsonl for the context adapter)
    model/           the model artifact (model.work/: checkpoints, TensorBoard logs, curve)
    index/           the response index
    <stem>.json/png  one evaluation per test set: 1 in 10, and against the whole repository
                     (<stem>_repository.png)
    report.json      what every step did, with timings

Example::

    report = run_pipeline(chitchat_recipe(), PipelineOptions(Path("artifacts/default")))
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager as ContextManager
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chatbot.config import ModelConfig
from chatbot.vocab import Vocab
from training.train_config import TrainConfig

if TYPE_CHECKING:
    from training.sentence_job import SentenceVectorJob

log = logging.getLogger(__name__)

# "index" also fits the echo rule and the confidence curves.
STEPS = ("data", "model", "semantic", "index", "evaluation")
BASELINES = ("tfidf", "random")


@dataclass(frozen=True)
class TestSet:
    """A 1-in-10 test file, evaluated into ``<stem>.json`` and ``<stem>.png``."""

    name: str
    path: Path
    stem: str


@dataclass(frozen=True)
class Recipe:
    """What one bot's pipeline is made of.

    Attributes:
        name: the artifact's name (the start of its version).
        preset: the training preset (:mod:`training.presets`).
        build_data: ``(data dir, model config, seed) -> summary``: writes ``train.csv``,
            ``valid.csv``, ``test.csv`` and the repository file into the data folder.
        valid_sets: ``data dir -> {name: file}``: the 1-in-10 rows the hybrid weight is tuned
            on (files that do not exist are left out).
        test_sets: ``data dir -> test sets``, evaluated once the model is final.
        responses: the file in the data folder that the response index is built from.
        word_vectors: start from word2vec vectors trained on ``data/sentences.txt``.
        context_adapter: fit the sentence encoder's context adapter on the data build's
            ``pairs.raw.jsonl`` (:mod:`training.sentence_adapter`).
    """

    name: str
    preset: str
    build_data: Callable[[Path, ModelConfig, int], Mapping[str, Any]]
    valid_sets: Callable[[Path], dict[str, Path]]
    test_sets: Callable[[Path], list[TestSet]]
    responses: str
    word_vectors: bool = False
    context_adapter: bool = False


@dataclass(frozen=True)
class PipelineOptions:
    """How to run a recipe.

    Args:
        out: the output folder.
        seed: seeds the data build, word vectors and training.
        max_steps: overrides the preset's training steps.
        hierarchical: overrides the preset's context encoding (turn by turn, or flat).
        negative_queue: overrides the preset's cross-batch negatives (0: off).
        lexical_residual: overrides the preset's TF-IDF weight in the loss (0: off).
        word_vectors: ``False`` turns the recipe's word2vec start off.
        lexical: tune and save the TF-IDF hybrid score (kept only if its weight is above 0).
        sentence: a sentence encoder folder (:mod:`training.sentence`) to add as the semantic
            part, its weight chosen on validation rows; ``None`` leaves it out.
        reuse: steps (of :data:`STEPS`) whose output is kept when it exists already and no
            step before it ran.
    """

    out: Path
    seed: int = 0
    max_steps: int | None = None
    hierarchical: bool | None = None
    negative_queue: int | None = None
    lexical_residual: float | None = None
    word_vectors: bool = True
    lexical: bool = True
    sentence: Path | None = None
    reuse: Collection[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = set(self.reuse) - set(STEPS)
        if unknown:
            raise ValueError(f"unknown steps {sorted(unknown)}; choose from {STEPS}")


@dataclass(frozen=True)
class Paths:
    """Where each step writes, under ``out``."""

    out: Path

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def model(self) -> Path:
        return self.out / "model"

    @property
    def workdir(self) -> Path:
        return self.out / "model.work"

    @property
    def index(self) -> Path:
        return self.out / "index"

    def csv(self, split: str) -> Path:
        return self.data / f"{split}.csv"

    def output(self, step: str) -> Path:
        """The file whose presence shows that ``step`` (any of :data:`STEPS` but the
        evaluation, whose files are named after its test sets) is done."""
        from chatbot.index import MANIFEST
        from chatbot.sentence import SENTENCE_INFO

        return {
            "data": self.data / "summary.json",
            "model": self.model / "manifest.json",
            "semantic": self.model / SENTENCE_INFO,
            "index": self.index / MANIFEST,
        }[step]


def make_vocab(train_csv: Path, config: ModelConfig) -> Vocab:
    """The model's vocabulary, built once and handed to both word2vec and training."""
    from training.dataset import build_vocab

    vocab = build_vocab(train_csv, config)
    log.info("vocabulary: %d words", len(vocab))
    return vocab


def word2vec_table(
    sentences: Path, vocab: Vocab, config: ModelConfig, seed: int
) -> tuple[np.ndarray, int]:
    """An embedding table in ``vocab`` order from word2vec on ``sentences``."""
    from training.embeddings import train_word2vec

    table, found = train_word2vec(sentences, vocab.words, config.embedding_dim, seed)
    log.info("word2vec vectors for %d of %d words", found, len(vocab))
    return table, found


def train_model(
    paths: Paths,
    recipe: Recipe,
    options: PipelineOptions,
    model_config: ModelConfig,
    train_config: Any,
    while_training: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
) -> dict[str, Any]:
    """Vocabulary, optional word vectors, training (a fresh run, within ``while_training``)
    and the hybrid weight."""
    from training.hybrid import add_lexical
    from training.train import train

    vocab = make_vocab(paths.csv("train"), model_config)
    embeddings, found = None, 0
    if recipe.word_vectors and options.word_vectors:
        embeddings, found = word2vec_table(
            paths.data / "sentences.txt", vocab, model_config, options.seed
        )
    shutil.rmtree(paths.workdir, ignore_errors=True)  # a fresh run, not a resumed one
    with while_training():
        result = train(
            paths.csv("train"),
            paths.csv("valid"),
            paths.model,
            model_config,
            train_config,
            workdir=paths.workdir,
            embeddings=embeddings,
            name=recipe.name,
            vocab=vocab,
        )
    tuning: dict[str, Any] = {"lexical_weight": 0.0}
    if options.lexical:
        tuning = add_lexical(
            paths.model, paths.csv("train"), recipe.valid_sets(paths.data), name=recipe.name
        )
    return {
        "word_vectors": {"used": embeddings is not None, "words_found": found},
        "training": {
            "steps": result.steps,
            "best_step": result.best_step,
            "valid_recall@1": result.best_recall_at_1,
            "stopped_early": result.stopped_early,
        },
        "hybrid": tuning,
    }


def evaluate_model(paths: Paths, test_sets: list[TestSet]) -> dict[str, Any]:
    """Recall@k of the final model and the baselines on every test set that exists, 1 in 10
    and against the whole response repository."""
    from chatbot.artifact import load_artifact
    from chatbot.index import load_index
    from chatbot.text import Normalizer
    from training.evaluate import Repository, run_evaluation
    from training.sources.udc_csv import read_eval_rows

    artifact = load_artifact(paths.model)
    scorer = artifact.scorer()
    repository = Repository(
        load_index(paths.index, artifact), Normalizer(artifact.config.normalization)
    )
    results = {}
    for test in test_sets:
        if not test.path.is_file():
            log.warning("%s: not found, test set %s skipped", test.path, test.name)
            continue
        log.info("evaluating on %s against %s", test.path, ", ".join(BASELINES))
        results[test.name] = run_evaluation(
            list(read_eval_rows(test.path)),
            scorer,
            BASELINES,
            paths.out / f"{test.stem}.json",
            plot_path=paths.out / f"{test.stem}.png",
            progress=False,
            repository=repository,
            calibration=artifact.calibration,
        )
    return results


def _configs(preset: str, options: PipelineOptions) -> tuple[ModelConfig, TrainConfig]:
    """The preset's model and training settings with the options' overrides applied."""
    from training.presets import PRESETS

    model_config, train_config = PRESETS[preset]
    if options.max_steps is not None:
        train_config = dataclasses.replace(train_config, max_steps=options.max_steps)
    train_config = dataclasses.replace(train_config, seed=options.seed)
    if options.negative_queue is not None:
        train_config = dataclasses.replace(train_config, negative_queue=options.negative_queue)
    if options.lexical_residual is not None:
        train_config = dataclasses.replace(train_config, lexical_residual=options.lexical_residual)
    if options.hierarchical is not None:
        model_config = dataclasses.replace(model_config, hierarchical=options.hierarchical)
    return model_config, train_config


def _pairs(paths: Paths, recipe: Recipe) -> Path | None:
    """The training pairs the recipe's context adapter is fitted on, when it has one and the
    data build wrote them (data built before they were written has none)."""
    from training.sentence_adapter import PAIRS

    if not recipe.context_adapter:
        return None
    if not (paths.data / PAIRS).is_file():
        log.warning("%s: not found (data built before), so no context adapter", paths.data / PAIRS)
        return None
    return paths.data / PAIRS


def run_pipeline(recipe: Recipe, options: PipelineOptions) -> dict[str, Any]:
    """Runs every step of ``recipe`` (keeping the outputs ``options.reuse`` allows).

    Returns:
        The report, also written to ``out/report.json``.
    """
    with ExitStack() as stack:
        return _run_steps(recipe, options, stack)


def _sentence_job(
    paths: Paths, options: PipelineOptions, stack: ExitStack
) -> SentenceVectorJob | None:
    """The background job that converts the sentence encoder and encodes the replies
    (:mod:`training.sentence_job`), when the semantic part will be indexed."""
    from training.sentence_job import SentenceVectorJob

    if options.sentence is None or not options.lexical:
        return None
    steps = ("data", "model", "semantic", "index")
    if all(step in options.reuse and paths.output(step).exists() for step in steps):
        return None  # the index is kept as it is
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatbot-sentence-")))
    job = SentenceVectorJob.start(options.sentence, work)
    stack.callback(job.close)  # before the folder goes (callbacks run last in, first out)
    return job


def _run_steps(recipe: Recipe, options: PipelineOptions, stack: ExitStack) -> dict[str, Any]:
    from training.indexing import build_index

    start = time.monotonic()
    paths = Paths(options.out)
    model_config, train_config = _configs(recipe.preset, options)
    report: dict[str, Any] = {"recipe": recipe.name, "steps": {}}
    timings: dict[str, float] = {}
    job = _sentence_job(paths, options, stack)

    def due(step: str, output: Path) -> bool:
        # An output is kept only while everything it was made from is kept too.
        upstream_ran = "ran" in report["steps"].values()
        if step in options.reuse and output.exists() and not upstream_ran:
            log.info("%s: reusing %s", step, output)
            report["steps"][step] = "reused"
            return False
        report["steps"][step] = "ran"
        return True

    tick = time.monotonic()
    build_data = due("data", paths.output("data"))
    if build_data:
        (paths.data / recipe.responses).unlink(missing_ok=True)  # the job waits for the new one
    if job is not None:
        job.encode(paths.data / recipe.responses, model_config.normalization)
    if build_data:
        log.info("step 1/5: data (%s)", recipe.name)
        paths.data.mkdir(parents=True, exist_ok=True)
        summary = dict(recipe.build_data(paths.data, model_config, options.seed))
        paths.output("data").write_text(json.dumps(summary, indent=2) + "\n")
    report["data"] = json.loads(paths.output("data").read_text())
    timings["data"] = time.monotonic() - tick

    tick = time.monotonic()
    if due("model", paths.output("model")):
        log.info("step 2/5: training the %s preset, then tuning the hybrid", recipe.preset)
        # The training takes both cores: the background job waits meanwhile.
        pause = job.paused if job is not None else contextlib.nullcontext
        report.update(train_model(paths, recipe, options, model_config, train_config, pause))
        from chatbot.lite_export import export_lite

        log.info("converting the encoders for LiteRT (serving without TensorFlow)")
        export_lite(paths.model)
    timings["model"] = time.monotonic() - tick

    tick = time.monotonic()
    if options.sentence is not None and options.lexical:
        from training.sentence import add_semantic

        if due("semantic", paths.output("semantic")):
            log.info("step 3/5: the semantic part (%s)", options.sentence)
            report["semantic"] = add_semantic(
                paths.model,
                options.sentence,
                recipe.valid_sets(paths.data),
                _pairs(paths, recipe),
                converted=job.converted() if job is not None else None,
            )
    elif options.sentence is not None:
        log.warning("the semantic part is served beside the lexical one: left out with it")
    timings["semantic"] = time.monotonic() - tick

    tick = time.monotonic()
    if due("index", paths.output("index")):
        log.info("step 4/5: encoding the response repository")
        report["index_responses"] = build_index(
            paths.model, paths.data / recipe.responses, paths.index, sentence_job=job
        ).responses
        if options.lexical:
            from training.echo import tune_echo_cosine

            report["echo"] = tune_echo_cosine(
                paths.model, paths.index, recipe.valid_sets(paths.data)
            )
        from training.calibration import calibrate_model

        log.info("fitting the confidence curves on the validation rows")
        report["calibration"] = calibrate_model(
            paths.model, recipe.valid_sets(paths.data), paths.index
        )
    timings["index"] = time.monotonic() - tick

    tick = time.monotonic()
    test_sets = recipe.test_sets(paths.data)
    if test_sets and due("evaluation", paths.out / f"{test_sets[0].stem}.json"):
        log.info("step 5/5: evaluation")
        report["evaluation"] = evaluate_model(paths, test_sets)
    timings["evaluation"] = time.monotonic() - tick

    report["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    report["seconds"] = round(time.monotonic() - start, 1)
    (paths.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report
