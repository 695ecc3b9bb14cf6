"""Training runs on generated data with the tiny preset (seconds on a CPU)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from chatbot.artifact import load_artifact
from training.presets import PRESETS
from training.synthetic import write_synthetic_udc
from training.train import train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic_udc(tmp_path_factory.mktemp("syn"), 3000, 100, 100, seed=3)


def tiny(**train_overrides):
    model_config, train_config = PRESETS["tiny"]
    return model_config, dataclasses.replace(train_config, **train_overrides)


@pytest.mark.parametrize(
    "model_overrides,train_overrides",
    [({}, {}), ({"hierarchical": True}, {})],
    ids=["flat", "hierarchical"],
)
def test_training_learns_and_writes_an_artifact(data, tmp_path, model_overrides, train_overrides):
    model_config, train_config = tiny(max_steps=300, eval_every=100, **train_overrides)
    model_config = dataclasses.replace(model_config, **model_overrides)
    result = train(
        data / "train.csv", data / "valid.csv", tmp_path / "model", model_config, train_config
    )
    # Topics make the true response recognisable: well above chance (0.10) after 300 steps.
    assert result.best_recall_at_1 >= 0.25
    artifact = load_artifact(tmp_path / "model")
    assert artifact.manifest["training"]["best_step"] == result.best_step
    assert artifact.config == model_config
    assert (tmp_path / "model.work" / "curve.png").stat().st_size > 1000
    assert (tmp_path / "model.work" / "tensorboard").is_dir()


def test_resume_continues_from_the_last_checkpoint(data, tmp_path):
    model_config, train_config = tiny(max_steps=20, checkpoint_every=10, eval_every=10)
    train(data / "train.csv", None, tmp_path / "model", model_config, train_config)
    longer = dataclasses.replace(train_config, max_steps=30)
    # On resume the saved train.json wins; rewrite it as a user extending a run would.
    (tmp_path / "model.work" / "train.json").write_text(json.dumps(dataclasses.asdict(longer)))
    result = train(data / "train.csv", None, tmp_path / "model", model_config, longer, resume=True)
    assert result.steps == 30
    checkpoints = sorted(p.name for p in (tmp_path / "model.work" / "checkpoints").glob("*.index"))
    assert checkpoints[-1] == "ckpt-30.index"


def test_binary_loss_trains_on_labelled_pairs(data, tmp_path):
    model_config, train_config = tiny(max_steps=10, eval_every=10)
    model_config = dataclasses.replace(model_config, loss="binary", bidirectional=True)
    result = train(
        data / "train.csv", data / "valid.csv", tmp_path / "m", model_config, train_config
    )
    assert result.steps == 10
    assert load_artifact(tmp_path / "m").config.bidirectional


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _weights(path: Path) -> list[np.ndarray]:
    arrays: list[np.ndarray] = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return arrays


@pytest.mark.slow
def test_two_workers_finish_with_the_same_weights(data, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": ""}
        cmd = [
            sys.executable,
            "-m",
            "chatbot_cli",
            "train",
            "--strategy",
            "multi-worker",
            "--preset",
            "tiny",
            "--train",
            str(data / "train.csv"),
            "--valid",
            str(data / "valid.csv"),
            "--out",
            str(tmp_path / "model"),
            "--max-steps",
            "12",
            "--eval-every",
            "6",
            "--checkpoint-every",
            "6",
        ]
        procs.append(
            subprocess.Popen(
                cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    work = tmp_path / "model.work"
    chief, other = (
        _weights(work / "final.weights.h5"),
        _weights(work / "worker-1" / "final.weights.h5"),
    )
    assert len(chief) == len(other) > 0
    for a, b in zip(chief, other, strict=True):
        np.testing.assert_array_equal(a, b)
    assert load_artifact(tmp_path / "model").manifest["training"]["steps"] == 12


def _tiny_batch(seed: int):
    """The tiny preset's config, an untrained model of it, and a batch of 4 contexts with
    their responses (the contexts reversed)."""
    import tensorflow as tf

    from chatbot.model import build_dual_encoder

    model_config, _ = PRESETS["tiny"]
    model = build_dual_encoder(model_config, vocab_size=50)
    ids = tf.constant(np.random.default_rng(seed).integers(2, 50, size=(4, 6)), tf.int32)
    return model_config, model, ids, tf.reverse(ids, axis=[1])


def test_hard_negatives_join_the_softmax_and_placeholders_do_not_count():
    import tensorflow as tf

    from training.train import _losses

    model_config, model, ids, responses = _tiny_batch(seed=0)
    labels = tf.ones(4)
    plain = _losses(model, model_config, (ids, responses), labels)
    with_none = _losses(model, model_config, (ids, responses, ids, tf.zeros(4)), labels)
    with_all = _losses(model, model_config, (ids, responses, ids, tf.ones(4)), labels)
    np.testing.assert_allclose(with_none.numpy(), plain.numpy(), rtol=1e-5)
    # Four more wrong answers in every row's softmax: each row's loss grows.
    assert (with_all.numpy() > plain.numpy()).all()


def test_a_lexical_residual_adds_each_pairs_weighted_cosine_to_its_logit():
    import tensorflow as tf

    from chatbot.lexical import TfidfModel
    from training.lexical_residual import Residual
    from training.train import _losses

    model_config, model, ids, _ = _tiny_batch(seed=2)
    labels = tf.ones(4)
    idf = np.ones(50, dtype=np.float32)
    idf[:2] = 0.0
    residual = Residual(TfidfModel([], []), idf, weight=3.0)
    # Each context is its own true response: cosine 1 on the diagonal, less elsewhere.
    plain = _losses(model, model_config, (ids, ids), labels)
    helped = _losses(model, model_config, (ids, ids), labels, residual=residual)
    assert (helped.numpy() < plain.numpy()).all()
    # The same as adding the cosines to the logits by hand (rows and columns, symmetric).
    logits = model.pairwise_logits(model.encode_contexts(ids), model.encode_responses(ids))
    logits += residual.logits(residual.rows(ids), ids)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits
    targets = tf.range(4)
    want = 0.5 * (xent(labels=targets, logits=logits) + xent(targets, tf.transpose(logits)))
    np.testing.assert_allclose(helped.numpy(), want.numpy(), rtol=1e-5)


def test_training_with_a_lexical_residual(data, tmp_path):
    model_config, train_config = tiny(max_steps=100, eval_every=50, lexical_residual=4.0)
    result = train(
        data / "train.csv", data / "valid.csv", tmp_path / "model", model_config, train_config
    )
    # Validation scores the sum the network is trained within; the generated replies share
    # their context's topic words, so it is far above chance (0.10).
    assert result.best_recall_at_1 >= 0.5
    saved = load_artifact(tmp_path / "model").manifest["training"]["config"]
    assert saved["lexical_residual"] == 4.0


def test_queued_responses_are_wrong_answers_until_they_are_placeholders():
    import tensorflow as tf

    from training.response_queue import ResponseQueue, fingerprints
    from training.train import _losses

    model_config, model, ids, responses = _tiny_batch(seed=1)
    labels = tf.ones(4)
    plain = _losses(model, model_config, (ids, responses), labels)
    queue = ResponseQueue(size=6, dim=model.encoding_dim)
    empty = _losses(model, model_config, (ids, responses), labels, queue)
    np.testing.assert_allclose(empty.numpy(), plain.numpy(), rtol=1e-5)  # nothing queued yet
    # The call queued this batch's four responses (in slots 0..3), as real replies.
    np.testing.assert_allclose(
        queue.vectors.numpy()[:4], model.encode_responses(responses).numpy(), atol=1e-6
    )
    assert queue.valid.numpy().tolist() == [1, 1, 1, 1, 0, 0]
    # Scored again, the queued copy of each row's own reply is not a wrong answer for it:
    # the other three are.
    again = _losses(model, model_config, (ids, responses), labels, queue).numpy()
    assert (again > plain.numpy()).all()
    # The same vectors under other fingerprints: now each row's own reply counts against it.
    unmasked = ResponseQueue(size=6, dim=model.encoding_dim)
    unmasked.push(queue.vectors[:4], tf.ones(4), fingerprints(responses) + 1)
    assert (_losses(model, model_config, (ids, responses), labels, unmasked).numpy() > again).all()
    # Rows without a true reply queue placeholders, which never count.
    orphans = (ids, responses, ids, tf.zeros(4))
    fresh = ResponseQueue(size=6, dim=model.encoding_dim)
    _losses(model, model_config, orphans, tf.zeros(4), fresh)
    assert fresh.valid.numpy().sum() == 0
    np.testing.assert_allclose(
        _losses(model, model_config, orphans, tf.zeros(4), fresh).numpy(),
        _losses(model, model_config, orphans, tf.zeros(4)).numpy(),
        rtol=1e-5,
    )


def test_training_with_a_response_queue(data, tmp_path):
    # The generated data's replies are told apart by topic alone, and 40 topics mean every
    # queued batch holds replies as good as a row's own: the queue cannot help there (it
    # stalls learning), so this checks that a run with it goes through, not that it learns.
    model_config, train_config = tiny(max_steps=30, eval_every=30, negative_queue=96)
    result = train(
        data / "train.csv", data / "valid.csv", tmp_path / "model", model_config, train_config
    )
    assert result.steps == 30
    assert all(np.isfinite(p["loss"]) for p in result.history if "loss" in p)
    saved = load_artifact(tmp_path / "model").manifest["training"]["config"]
    assert saved["negative_queue"] == 96


def test_a_response_queue_keeps_the_latest_rows_of_a_batch_larger_than_itself():
    import tensorflow as tf

    from training.response_queue import ResponseQueue

    queue = ResponseQueue(size=3, dim=1)
    queue.push(
        tf.constant([[1.0], [2.0], [3.0], [4.0], [5.0]]), tf.ones(5), tf.range(5, dtype="int64")
    )
    assert sorted(queue.vectors.numpy()[:, 0].tolist()) == [3.0, 4.0, 5.0]
    assert sorted(queue.fingerprints.numpy().tolist()) == [2, 3, 4]
    queue.push(tf.constant([[6.0]]), tf.ones(1), tf.constant([9], "int64"))  # over the oldest
    assert sorted(queue.vectors.numpy()[:, 0].tolist()) == [4.0, 5.0, 6.0]


def test_training_with_hard_negatives_from_the_training_file(tmp_path):
    from training.sources.udc_csv import TRAIN_HEADER, read_train_rows, write_csv

    rows = []
    for row in read_train_rows(write_synthetic_udc(tmp_path / "syn", 600, 50, 1) / "train.csv"):
        if row.label == 1:
            rows.append((row.context, row.response, 1))
            rows.append((row.context, row.context.split(" __eot__")[-2] + " __eou__", 0))
    write_csv(tmp_path / "train.csv", TRAIN_HEADER, rows, progress=False)
    model_config, train_config = tiny(max_steps=20, eval_every=20, hard_negatives=True)
    result = train(
        tmp_path / "train.csv",
        tmp_path / "syn" / "valid.csv",
        tmp_path / "model",
        model_config,
        train_config,
    )
    assert result.steps == 20 and np.isfinite(result.history[0]["loss"])
    assert load_artifact(tmp_path / "model").manifest["training"]["steps"] == 20
