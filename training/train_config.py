"""Optimisation settings of a training run: a frozen dataclass, kept apart from the training
loop so that reading them (presets, the command line) does not load TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model's own are in :class:`ModelConfig`).

    Args:
        batch_size: global batch size (split across replicas).
        learning_rate: Adam's step size.
        max_steps: training steps in all.
        eval_every: steps between validation runs (recall@1 on the validation file).
        eval_rows: validation rows used (the first ones of the file).
        checkpoint_every: steps between checkpoints.
        patience: validation runs without improvement before stopping early.
        clip_norm: gradient norm cap.
        shuffle_buffer: rows held for shuffling.
        bucketing: length-bucketed batches.
        hard_negatives: with the softmax loss, add each context's label-0 responses of the
            training file (written by the data build) as hard negatives.
        negative_queue: with the softmax loss, also score each context against the
            responses of the last ``negative_queue`` training rows (0: off); see
            :mod:`training.response_queue`.
        lexical_residual: with the softmax loss, the weight of the TF-IDF cosine added to
            every training logit (0: off), so that the network learns what word overlap
            misses (:mod:`training.lexical_residual`); validation then scores the same sum.
        seed: initialisation and shuffling seed.
        log_every: steps between log lines and TensorBoard points.
    """

    batch_size: int = 128
    learning_rate: float = 1e-3
    max_steps: int = 2000
    eval_every: int = 200
    eval_rows: int = 1000
    checkpoint_every: int = 200
    patience: int = 5
    clip_norm: float = 10.0
    shuffle_buffer: int = 10_000
    bucketing: bool = True
    hard_negatives: bool = False
    negative_queue: int = 0
    lexical_residual: float = 0.0
    seed: int = 0
    log_every: int = 20

    def __post_init__(self) -> None:
        positive = ("batch_size", "max_steps", "eval_every", "checkpoint_every", "log_every")
        bad = {name: getattr(self, name) for name in positive if getattr(self, name) < 1}
        if self.learning_rate <= 0:
            bad["learning_rate"] = self.learning_rate
        if self.lexical_residual < 0:
            bad["lexical_residual"] = self.lexical_residual
        for name in ("eval_rows", "patience", "shuffle_buffer", "negative_queue"):
            if getattr(self, name) < 0:
                bad[name] = getattr(self, name)
        if bad:
            raise ConfigError(f"invalid TrainConfig values: {bad}")
