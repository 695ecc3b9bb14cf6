"""Training loop: a tf.distribute strategy, checkpoints, resume, validation, early stopping.

The loop is written out (rather than ``model.fit``) because it must checkpoint every N steps
and resume after a kill, keep the best validation checkpoint, and run unchanged on one
device, several GPUs (``MirroredStrategy``) or several machines
(``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``).

Work directory layout (``workdir``)::

    config.json, train.json, vocab.txt    what the run trains (reused on --resume)
    checkpoints/                          every ``checkpoint_every`` steps (model + optimizer)
    best.weights.h5                       weights with the best validation recall@1
    tensorboard/                          loss, recall@1, examples/s
    history.json, curve.png               the training curve
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from chatbot.artifact import save_artifact
from chatbot.config import ModelConfig, from_dict
from chatbot.encoder import TextEncoder
from chatbot.model import DualEncoder, build_dual_encoder
from chatbot.scoring import Scorer
from chatbot.vocab import Vocab
from training.dataset import InputOptions, build_vocab, train_dataset
from training.errors import DataError
from training.evaluate import evaluate
from training.lexical_residual import Residual
from training.response_queue import ResponseQueue, fingerprints
from training.sources.udc_csv import EvalRow, read_eval_rows
from training.train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced."""

    steps: int
    best_recall_at_1: float
    best_step: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    skipped_rows: int = 0


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local GPUs) or ``multi-worker`` (TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi-worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; expected default, mirrored or multi-worker")


def _task() -> tuple[str, int]:
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0))


def is_chief() -> bool:
    task_type, task_id = _task()
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if "chief" in cluster:
        return task_type == "chief"
    return task_type in ("chief", "worker") and task_id == 0


def _write_dir(workdir: Path) -> Path:
    """Where this task writes: the work directory on the chief, a subfolder elsewhere.

    Under MultiWorkerMirroredStrategy every worker must take part in saving checkpoints,
    but only the chief's copy is the run's; the others' land in ``workdir/<task>-<index>``.
    """
    if is_chief():
        return workdir
    task_type, task_id = _task()
    path = workdir / f"{task_type}-{task_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _losses(
    model: DualEncoder,
    config: ModelConfig,
    inputs: tuple[tf.Tensor, ...],
    labels: tf.Tensor,
    queue: ResponseQueue | None = None,
    residual: Residual | None = None,
) -> tf.Tensor:
    """Per-example loss for one replica's batch.

    ``inputs`` is ``(contexts, responses)``, or with hard negatives ``(contexts, responses,
    negatives, has_negative)``: each context's hard negative then joins the in-batch
    negatives of the softmax (as a wrong answer for every context of the batch). There a row
    labelled 0 has no true response: it only pushes its negative's score down. With a
    ``queue`` the responses of recent batches are wrong answers too, and this batch's
    responses are pushed onto it (after they are scored against it). With a ``residual``
    every logit of the softmax gets its pair's weighted TF-IDF cosine.
    """
    context_ids, response_ids = inputs[0], inputs[1]
    c = model.encode_contexts(context_ids, training=True)  # (B, d)
    r = model.encode_responses(response_ids, training=True)  # (B, d)
    if config.loss == "binary":
        logits = tf.reduce_sum(c * r, axis=-1) + model.b
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    # In-batch negatives: every other response in the batch is a wrong answer.
    logits = model.pairwise_logits(c, r)  # (B, B), the true response on the diagonal
    if residual is not None:
        context_rows = residual.rows(context_ids)
        logits += residual.logits(context_rows, response_ids)
    targets = tf.range(tf.shape(logits)[0])
    has_true = tf.ones_like(targets, logits.dtype)
    columns = [logits]
    if len(inputs) > 2:
        # A row of label 0 has no true response (a down-voted reply alone, training.dataset):
        # its placeholder column counts for no row, and its loss scores its negative low.
        has_true = tf.cast(labels, logits.dtype)
        logits = logits - 1e9 * (1.0 - has_true)[None, :]
        h = model.encode_responses(inputs[2], training=True)  # (B, d)
        hard = model.pairwise_logits(c, h)  # (B, B)
        if residual is not None:
            hard += residual.logits(context_rows, inputs[2])
        # A row without a negative holds a placeholder: its column must never count.
        missing = tf.cast(1.0 - inputs[3], hard.dtype)[None, :]  # (1, B)
        columns = [logits, hard - 1e9 * missing]
    if queue is not None:
        prints = fingerprints(response_ids)
        columns.append(queue.logits(c, model.b, prints))
        queue.push(r, has_true, prints)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits
    loss = xent(labels=targets, logits=tf.concat(columns, axis=1))
    if config.symmetric_loss:  # each true response picks its context among the batch's
        loss = 0.5 * (loss + xent(labels=targets, logits=tf.transpose(logits)))
    if len(inputs) == 2:
        return loss
    pushed_down = tf.nn.softplus(tf.linalg.diag_part(hard))  # -log σ(-s(c, negative))
    return has_true * loss + (1.0 - has_true) * pushed_down


def validation_recall(
    encoder: TextEncoder, rows: list[EvalRow], residual: Residual | None = None
) -> float:
    """R10@1 of the encoder's current weights on validation rows: of the neural part alone,
    or with a residual of the sum the network is trained within."""
    scorer = residual.scorer(encoder) if residual is not None else Scorer(encoder)
    return evaluate(rows, scorer, progress=False)["model"]["recall@1"]


def _prepare_workdir(
    workdir: Path,
    train_path: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    resume: bool,
    vocab: Vocab | None = None,
) -> tuple[ModelConfig, TrainConfig, Vocab]:
    """Config and vocabulary of the run: saved ones on resume, else ``vocab`` or one built
    from the training file, saved now."""
    config_path, train_json, vocab_path = (
        workdir / "config.json",
        workdir / "train.json",
        workdir / "vocab.txt",
    )
    if resume and config_path.exists():
        log.info("resuming the run in %s with its saved config and vocabulary", workdir)
        saved_train = from_dict(TrainConfig, json.loads(train_json.read_text()), str(train_json))
        return ModelConfig.load(config_path), saved_train, Vocab.load(vocab_path)
    if vocab is None:
        vocab = build_vocab(train_path, model_config)
    log.info(
        "vocabulary: %d words (cap %d, min count %d)",
        len(vocab),
        model_config.vocab_size,
        model_config.min_count,
    )
    if is_chief():
        workdir.mkdir(parents=True, exist_ok=True)
        model_config.save(config_path)
        train_json.write_text(json.dumps(asdict(train_config), indent=2) + "\n")
        vocab.save(vocab_path)
    return model_config, train_config, vocab


def train(
    train_path: Path,
    valid_path: Path | None,
    out_dir: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    workdir: Path | None = None,
    resume: bool = False,
    strategy: tf.distribute.Strategy | None = None,
    embeddings: np.ndarray | None = None,
    embeddings_file: Path | None = None,
    name: str = "model",
    vocab: Vocab | None = None,
    extra_train: Sequence[Path] = (),
) -> TrainResult:
    """Trains a dual encoder and writes its artifact to ``out_dir``.

    Args:
        train_path: UDC v2 train-layout CSV.
        valid_path: UDC v2 evaluation-layout CSV for recall@1 during training (optional).
        out_dir: where the model artifact goes.
        model_config: the model to train (ignored on resume: the saved one is used).
        train_config: optimisation settings (ignored on resume, as above).
        workdir: checkpoints and logs; default ``<out_dir>.work``.
        resume: continue from the latest checkpoint in ``workdir``.
        strategy: a tf.distribute strategy; default: the current one (one device).
        embeddings: initial word vectors, (vocab size, embedding_dim), rows in vocab order.
        embeddings_file: or a word-vector text file to read them from (see
            :func:`training.embeddings.load_word_vectors`).
        name: the artifact's name, the start of its version string.
        vocab: the vocabulary (the one ``embeddings`` rows follow); default: built from
            ``train_path`` by ``model_config``.
        extra_train: more train-layout files, such as exported feedback; with the softmax
            loss their label-0 rows are hard negatives of their contexts
            (:class:`training.dataset.InputOptions`).

    Returns:
        A :class:`TrainResult`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    workdir = workdir or out_dir.with_name(out_dir.name + ".work")
    config, tc, vocab = _prepare_workdir(
        workdir, train_path, model_config, train_config, resume, vocab
    )
    if config.hierarchical and not vocab.turn_marker_id:
        raise DataError(train_path, None, "a hierarchical model needs __eot__ turn markers")
    keras.utils.set_random_seed(tc.seed)
    write_dir = _write_dir(workdir)
    if embeddings is None and embeddings_file is not None and not resume:
        from training.embeddings import load_word_vectors

        embeddings, _ = load_word_vectors(embeddings_file, vocab, config.embedding_dim, tc.seed)

    with strategy.scope():
        model = build_dual_encoder(config, len(vocab), vocab.turn_marker_id)
        if embeddings is not None:
            model.set_embeddings(embeddings)
        optimizer = keras.optimizers.Adam(tc.learning_rate, global_clipnorm=tc.clip_norm)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        best = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        best_step = tf.Variable(0, dtype=tf.int64, trainable=False)
        bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False)
        queue = (
            ResponseQueue(tc.negative_queue, model.encoding_dim)
            if tc.negative_queue and config.loss == "softmax"
            else None
        )
    checkpoint = tf.train.Checkpoint(
        model=model,
        optimizer=optimizer,
        step=step,
        best=best,
        best_step=best_step,
        bad_evals=bad_evals,
    )
    manager = tf.train.CheckpointManager(checkpoint, str(write_dir / "checkpoints"), max_to_keep=3)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log.info("restored %s at step %d", manager.latest_checkpoint, int(step.numpy()))

    options = InputOptions(
        batch_size=tc.batch_size,
        shuffle_buffer=tc.shuffle_buffer,
        bucketing=tc.bucketing,
        positives_only=config.loss == "softmax",
        hard_negatives=tc.hard_negatives and config.loss == "softmax",
        extra=tuple(extra_train),
        seed=tc.seed + int(step.numpy()),  # a resumed run does not replay the same order
    )

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = ctx.get_per_replica_batch_size(tc.batch_size)
        shard = (ctx.num_input_pipelines, ctx.input_pipeline_id)
        return train_dataset(train_path, vocab, config, _replace_batch(options, per_replica), shard)

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
    residual = None
    if tc.lexical_residual > 0 and config.loss == "softmax":
        log.info("lexical residual: TF-IDF cosine x %g in every logit", tc.lexical_residual)
        residual = Residual.fit(train_path, vocab, tc.lexical_residual)

    @tf.function(reduce_retracing=True)
    def train_step(iterator: Any) -> tf.Tensor:
        def step_fn(inputs: tuple[tf.Tensor, ...], labels: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                losses = _losses(model, config, inputs, labels, queue, residual)
                loss = tf.nn.compute_average_loss(losses)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        inputs, labels = next(iterator)
        per_replica = strategy.run(step_fn, args=(inputs, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    valid_rows = _valid_rows(valid_path, tc.eval_rows)
    # One encoder for every validation run: it reads the live weights, and its compiled
    # functions are traced once rather than at every evaluation.
    valid_encoder = TextEncoder(model, vocab, config, jit_compile=False)
    writer = tf.summary.create_file_writer(str(write_dir / "tensorboard"))
    history = _load_history(workdir) if resume else []
    stopped_early = False
    start_step = int(step.numpy())
    bar = tqdm(total=tc.max_steps, initial=start_step, desc="training", unit="step")
    window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
    while int(step.numpy()) < tc.max_steps:
        loss = float(train_step(iterator))
        step.assign_add(1)
        s = int(step.numpy())
        window_loss, window_steps = window_loss + loss, window_steps + 1
        bar.update(1)
        if s % tc.log_every == 0 or s == tc.max_steps:
            elapsed = time.perf_counter() - window_start
            point = {
                "step": s,
                "loss": window_loss / window_steps,
                "examples_per_s": window_steps * tc.batch_size / elapsed,
            }
            bar.set_postfix(loss=f"{point['loss']:.4f}", ex_s=f"{point['examples_per_s']:.0f}")
            with writer.as_default(step=s):
                tf.summary.scalar("loss", point["loss"])
                tf.summary.scalar("examples_per_s", point["examples_per_s"])
            history.append(point)
            window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
        if valid_rows and (s % tc.eval_every == 0 or s == tc.max_steps):
            recall = validation_recall(valid_encoder, valid_rows, residual)
            history.append({"step": s, "valid_recall@1": recall})
            with writer.as_default(step=s):
                tf.summary.scalar("valid_recall@1", recall)
            improved = recall > float(best.numpy())
            if improved:
                best.assign(recall)
                best_step.assign(s)
                bad_evals.assign(0)
                model.save_weights(write_dir / "best.weights.h5")
            else:
                bad_evals.assign_add(1)
            log.info(
                "step %d: validation R10@1 %.4f (best %.4f at step %d)",
                s,
                recall,
                float(best.numpy()),
                int(best_step.numpy()),
            )
            stopped_early = int(bad_evals.numpy()) >= tc.patience
        if s % tc.checkpoint_every == 0 or stopped_early or s == tc.max_steps:
            manager.save(checkpoint_number=s)
            _save_history(write_dir, history)
        if stopped_early:
            log.info("stopping early: no improvement in %d validation runs", tc.patience)
            break
    bar.close()

    if (write_dir / "best.weights.h5").exists():
        model.load_weights(write_dir / "best.weights.h5")
    model.save_weights(write_dir / "final.weights.h5")
    result = TrainResult(
        steps=int(step.numpy()),
        best_recall_at_1=float(best.numpy()),
        best_step=int(best_step.numpy()),
        stopped_early=stopped_early,
        history=history,
    )
    if is_chief():
        files = [train_path, *extra_train]
        _finish(out_dir, workdir, model, vocab, config, tc, result, name, files, valid_path)
    return result


def _replace_batch(options: InputOptions, batch_size: int) -> InputOptions:
    return InputOptions(**{**asdict(options), "batch_size": batch_size})


def _valid_rows(valid_path: Path | None, limit: int) -> list[EvalRow]:
    if valid_path is None:
        return []
    rows = list(itertools.islice(read_eval_rows(valid_path), limit))
    log.info("validation: %d rows of %s", len(rows), valid_path)
    return rows


def _load_history(workdir: Path) -> list[dict[str, float]]:
    path = workdir / "history.json"
    return json.loads(path.read_text()) if path.exists() else []


def _save_history(write_dir: Path, history: list[dict[str, float]]) -> None:
    (write_dir / "history.json").write_text(json.dumps(history) + "\n")


def _finish(
    out_dir: Path,
    workdir: Path,
    model: DualEncoder,
    vocab: Vocab,
    config: ModelConfig,
    tc: TrainConfig,
    result: TrainResult,
    name: str,
    train_files: Sequence[Path],
    valid_path: Path | None,
) -> None:
    from training.plots import plot_training_curve

    plot_training_curve(result.history, workdir / "curve.png")
    best = result.best_recall_at_1
    save_artifact(
        out_dir,
        model,
        vocab,
        config,
        name=name,
        extra={
            "training": {
                "train_file": str(train_files[0]),
                "extra_train_files": [str(path) for path in train_files[1:]],
                "valid_file": str(valid_path) if valid_path else None,
                "steps": result.steps,
                "best_step": result.best_step,
                "valid_recall@1": None if math.isclose(best, -1.0) else best,
                "config": asdict(tc),
            }
        },
    )
    log.info("model artifact written to %s (training curve: %s)", out_dir, workdir / "curve.png")
