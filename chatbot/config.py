"""Model configuration: a frozen dataclass saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from chatbot.errors import ConfigError
from chatbot.text import MODES

Loss = Literal["binary", "softmax"]
LOSSES: tuple[str, ...] = ("binary", "softmax")

T = TypeVar("T")


# The echo rule's cosine before it was tuned per model: what models saved without it get.
ECHO_COSINE = 0.7
# The semantic echo rule off (a sentence cosine never reaches it): models saved without it.
SEMANTIC_ECHO_OFF = 2.0


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Builds a dataclass from a dict, rejecting unknown keys with a message naming them."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown {cls.__name__} keys {unknown}; expected {sorted(names)}"
        )
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the dual encoder and of the text it reads.

    Args:
        vocab_size: most frequent words kept (plus padding and unknown).
        min_count: words seen fewer times are unknown.
        embedding_dim: word-vector size.
        hidden_size: LSTM units (per direction when bidirectional).
        bidirectional: run the encoder both ways and concatenate the final states.
        shared_encoder: one LSTM for contexts and responses (the paper) or two.
        dropout: on embeddings and encoder outputs, while training.
        max_context_tokens: contexts keep their LAST tokens, so the latest turns survive.
        max_response_tokens: responses keep their first tokens.
        loss: ``binary`` (labelled pairs, the paper's) or ``softmax`` (in-batch negatives).
        symmetric_loss: with softmax, also rank contexts for each response.
        normalization: text normalisation applied to raw input (see ``chatbot.text``).
        lexical_weight: weight of the TF-IDF cosine added to the neural score (the hybrid
            score, see ``chatbot.lexical``); 0 is the plain dual encoder. Above 0 the artifact
            must hold the fitted TF-IDF model.
        hierarchical: encode a context turn by turn (the utterance encoder on each of its last
            ``max_turns`` turns, then an LSTM over the turn vectors) instead of as one token
            stream; the turns are cut at ``__eot__`` markers.
        max_turns: turns a hierarchical context keeps (the latest ones).
        max_turn_tokens: tokens a hierarchical context keeps of each turn (the first ones).
        echo_cosine: a hybrid model never answers with a repository response whose TF-IDF
            cosine with the user's last turn is this high (a restatement, not an answer);
            above 1 turns the rule off. Chosen on validation rows against the repository
            (``training.echo``).
        semantic_weight: weight of the sentence encoder's cosine added to the score (the
            semantic part, see ``chatbot.sentence``); 0 leaves it out. Above 0 the artifact
            must hold the converted sentence encoder. Chosen on validation rows
            (``training.sentence``).
        semantic_echo_cosine: with the semantic part, the model also never answers with a
            response whose sentence cosine with the user's last turn is this high (a
            restatement in other words); above 1 turns it off. Chosen on validation rows
            (``training.echo``).

    Example:
        >>> ModelConfig(hidden_size=8).encoding_dim
        8
    """

    vocab_size: int = 30_000
    min_count: int = 2
    embedding_dim: int = 100
    hidden_size: int = 256
    bidirectional: bool = False
    shared_encoder: bool = True
    dropout: float = 0.0
    max_context_tokens: int = 160
    max_response_tokens: int = 80
    loss: str = "binary"
    symmetric_loss: bool = False
    normalization: str = "udc"
    lexical_weight: float = 0.0
    hierarchical: bool = False
    max_turns: int = 8
    max_turn_tokens: int = 32
    echo_cosine: float = ECHO_COSINE
    semantic_weight: float = 0.0
    semantic_echo_cosine: float = SEMANTIC_ECHO_OFF

    def __post_init__(self) -> None:
        checks = {
            "vocab_size": self.vocab_size >= 3,
            "min_count": self.min_count >= 1,
            "embedding_dim": self.embedding_dim >= 1,
            "hidden_size": self.hidden_size >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "max_context_tokens": self.max_context_tokens >= 1,
            "max_response_tokens": self.max_response_tokens >= 1,
            "loss": self.loss in LOSSES,
            "normalization": self.normalization in MODES,
            "lexical_weight": self.lexical_weight >= 0.0,
            "max_turns": self.max_turns >= 1,
            "max_turn_tokens": self.max_turn_tokens >= 1,
            "echo_cosine": self.echo_cosine > 0.0,
            "semantic_weight": self.semantic_weight >= 0.0,
            "semantic_echo_cosine": self.semantic_echo_cosine > 0.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = {name: getattr(self, name) for name in bad}
            raise ConfigError(f"invalid ModelConfig values: {values}")

    @property
    def encoding_dim(self) -> int:
        """Size of an encoded context or response."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        return from_dict(cls, json.loads(path.read_text()), source=str(path))
