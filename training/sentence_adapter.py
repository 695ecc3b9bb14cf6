"""The sentence encoder's context adapter: a linear map learnt from the bot's own pairs.

The pretrained sentence encoder (:mod:`chatbot.sentence`) places a question nearest to
other questions like it: against a whole repository the user's own words, restated by
someone else, outrank the answer. The adapter is trained for the service's job instead:
a context's vector c becomes c + cW (unit length again), W learnt with an in-batch softmax
over the data build's (context, reply) training pairs, so that a context lands near the
replies that answered contexts like it. Replies and the index are not touched, so it costs
a request one 384 × 384 product.

W starts at zero (the pretrained encoder as it is). After each pass over the pairs it is
judged on held-out pairs: each held-out context ranks its reply among the replies of all
the pairs, the service's job in small. The best pass is kept, and none if no pass beats the
pretrained encoder.

The data build samples the pairs into ``pairs.raw.jsonl`` (:func:`write_training_pairs`), as
people wrote them, in the layout of :mod:`training.raw_text` (one candidate: the reply).

Example:
    >>> rng = np.random.default_rng(0)
    >>> contexts = rng.standard_normal((1000, 8)).astype(np.float32)
    >>> replies = contexts @ (np.eye(8) + rng.standard_normal((8, 8)) / 3)  # elsewhere
    >>> contexts /= np.linalg.norm(contexts, axis=1, keepdims=True)
    >>> replies /= np.linalg.norm(replies, axis=1, keepdims=True)
    >>> adapter, report = fit_adapter(contexts, replies, 0, 3, 200, learning_rate=0.03)
    >>> adapter is not None and report["held_out_mrr"][-1] > report["held_out_mrr"][0]
    True
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.sentence import CONTEXT_TURNS, adapt_vectors, sentence_text
from training.build import raw_turn
from training.dialogue import Dialogue
from training.pairs import pair_positions
from training.raw_text import RawText, read_raw_file, write_raw_text

log = logging.getLogger(__name__)

PAIRS = "pairs.raw.jsonl"  # in a data folder
# Pairs a data build samples. 30,000 of the Ubuntu model's took 3 minutes to encode on two
# cores; on its own test rows the sentence part alone then went from R@10 0.141 to 0.152–0.159
# and MRR 0.098 to 0.104–0.110, the same with 8 passes (docs/results.md, stop 22).
ADAPTER_PAIRS = 30_000
HELD_OUT = 2_000  # pairs kept aside to choose the pass (a fifth of fewer pairs)
MIN_PAIRS = 100  # fewer cannot judge a pass
EPOCHS = 4
BATCH = 512
# The softmax's temperature: cosines lie in [-1, 1]. 0.02, 0.05 and 0.1 all helped; 0.05 and
# a learning rate of 3e-4 were the steadiest on validation rows.
TEMPERATURE = 0.05
LEARNING_RATE = 3e-4
WEIGHT_DECAY = 1e-3  # on W: the map stays near the identity


def write_training_pairs(
    path: Path, dialogues: Sequence[Dialogue], seed: int, n: int = ADAPTER_PAIRS
) -> int:
    """Samples up to ``n`` (context, next turn) pairs of ``dialogues`` (training dialogues)
    and writes their raw text to ``path`` atomically: the context's last turns as the
    sentence encoder reads them, and the reply. Returns how many were written."""
    positions = pair_positions(dialogues)
    rng = random.Random(f"{seed}:adapter-pairs")
    if len(positions) > n:
        positions = sorted(rng.sample(positions, n))
    rows = []
    for i, k in positions:
        turns = dialogues[i].turns
        said = tuple(raw_turn(t) for t in turns[max(0, k - CONTEXT_TURNS) : k])
        reply = raw_turn(turns[k])
        if reply and any(said):
            rows.append(RawText(said, (reply,)))
    part = path.with_name(path.name + ".part")
    write_raw_text(part, rows)
    part.replace(path)
    return len(rows)


def fit_adapter(
    contexts: np.ndarray,
    replies: np.ndarray,
    seed: int = 0,
    epochs: int = EPOCHS,
    held_out: int = HELD_OUT,
    learning_rate: float = LEARNING_RATE,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Learns W from unit ``contexts`` and the ``replies`` that answered them (``(n, dim)``
    each): ``(W or None, report)``; the report holds the held-out MRR before each pass
    (``held_out_mrr[0]``: the pretrained encoder) and the pass kept (0: none)."""
    import tensorflow as tf

    contexts, replies = (np.asarray(a, dtype=np.float32) for a in (contexts, replies))
    if contexts.shape != replies.shape or len(contexts) <= held_out:
        raise ValueError(
            f"{contexts.shape} contexts and {replies.shape} replies: need the same shape "
            f"and more than {held_out} pairs"
        )
    order = np.random.default_rng(seed).permutation(len(contexts))
    test, train = order[:held_out], order[held_out:]
    dim = contexts.shape[1]
    weights = tf.Variable(tf.zeros((dim, dim)))
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    @tf.function(autograph=False)  # no Python control flow to convert
    def step(c: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            q = tf.math.l2_normalize(c + c @ weights, axis=1)
            logits = q @ tf.transpose(r) / TEMPERATURE
            labels = tf.range(tf.shape(c)[0])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            loss += WEIGHT_DECAY * tf.reduce_sum(weights * weights)
        optimizer.apply_gradients([(tape.gradient(loss, weights), weights)])
        return loss

    batches = (
        tf.data.Dataset.from_tensor_slices((contexts[train], replies[train]))
        .shuffle(len(train), seed=seed)
        .batch(min(BATCH, len(train)), drop_remainder=True)
    )
    scores = [held_out_mrr(contexts[test], test, replies, None)]
    best, best_weights = 0, None
    for epoch in range(1, epochs + 1):
        for c, r in batches:
            step(c, r)
        current = weights.numpy()
        scores.append(held_out_mrr(contexts[test], test, replies, current))
        log.info("context adapter: pass %d, held-out MRR %.4f", epoch, scores[-1])
        if scores[-1] > scores[best]:
            best, best_weights = epoch, current.copy()
    report = {
        "pairs": len(contexts),
        "held_out": held_out,
        "held_out_mrr": [round(s, 4) for s in scores],
        "pass_kept": best,
    }
    return best_weights, report


def held_out_mrr(
    contexts: np.ndarray, truths: np.ndarray, replies: np.ndarray, adapter: np.ndarray | None
) -> float:
    """Mean reciprocal rank of each context's reply (``replies[truths[i]]``) among all
    ``replies``, the contexts mapped by ``adapter``."""
    queries = adapt_vectors(contexts, adapter)
    ranks = []
    for start in range(0, len(queries), 256):
        part = queries[start : start + 256]
        scores = part @ replies.T
        true = scores[np.arange(len(part)), truths[start : start + 256]]
        ranks.append(1 + (scores > true[:, None]).sum(axis=1))
    return float(np.mean(1.0 / np.concatenate(ranks)))


def add_adapter(model_dir: Path, pairs_path: Path, seed: int = 0) -> dict[str, Any]:
    """Fits the context adapter of the artifact at ``model_dir``'s sentence encoder on
    ``pairs_path`` and saves it (or removes an old one when no pass helped)."""
    from chatbot.artifact import load_artifact, rewrite_files
    from chatbot.sentence import SENTENCE_ADAPTER

    sentence = load_artifact(model_dir, network=False).sentence_encoder
    if sentence is None:
        raise ValueError(f"{model_dir}: no sentence encoder to adapt")
    pairs = read_raw_file(pairs_path)
    if len(pairs) < MIN_PAIRS:
        log.warning("context adapter: %d pairs in %s, too few; none kept", len(pairs), pairs_path)
        rewrite_files(model_dir, {}, remove=(SENTENCE_ADAPTER,))
        return {"pairs": len(pairs), "pass_kept": 0}
    log.info("context adapter: encoding %d pairs of %s", len(pairs), pairs_path)
    said = [sentence_text(p.turns, sentence.context_turns) for p in pairs]
    contexts = sentence.encode_queries(said, progress=True)
    replies = sentence.encode([p.candidates[0] for p in pairs], progress=True)
    adapter, report = fit_adapter(contexts, replies, seed, held_out=min(HELD_OUT, len(pairs) // 5))
    if adapter is None:
        log.info("context adapter: no pass beat the pretrained encoder; none kept")
        rewrite_files(model_dir, {}, remove=(SENTENCE_ADAPTER,))
    else:
        rewrite_files(model_dir, {SENTENCE_ADAPTER: lambda p: np.save(p, adapter)})
    return report
