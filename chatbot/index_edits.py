"""Edits of a response index: responses added (encoded by its model) and removed, by text.

The edited index is a new index (:func:`chatbot.index.save_index`), never the old one changed
in place: the old one keeps serving until the new one replaces it (:mod:`chatbot.bundles`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from chatbot.artifact import Artifact
from chatbot.errors import ChatbotError
from chatbot.index import ResponseIndex, save_index
from chatbot.text import Normalizer


class EditError(ChatbotError, ValueError):
    """An edit that cannot be applied as asked (nothing is changed)."""


@dataclass(frozen=True)
class EditPlan:
    """Which rows of the old index stay, and which texts are new.

    Removals apply first, then additions; so a text both removed and added stays, with a
    fresh vector.

    Example:
        >>> plan = plan_edit(["hi", "bye", "yes"], add=["no", "hi", "no"], remove=["bye", "?"])
        >>> plan.keep.tolist(), plan.add, plan.unchanged, plan.not_found
        ([0, 2], ['no'], ['hi'], ['?'])
    """

    keep: np.ndarray  # row numbers of the old index that stay, in order
    add: list[str]  # texts to append, first occurrence of each, none already kept
    unchanged: list[str]  # additions already in the index (kept once)
    not_found: list[str]  # removals that were not in the index (nothing to do)
    removed: int


def plan_edit(texts: Sequence[str], add: Sequence[str], remove: Sequence[str]) -> EditPlan:
    """Matches texts exactly (after stripping outer white space).

    Raises:
        EditError: an addition is blank, or the edit would leave no response.
    """
    add = [text.strip() for text in add]
    for i, text in enumerate(add):
        if not text:
            raise EditError(f"add[{i}] is empty")
    drop = {text.strip() for text in remove}
    present = [text.strip() for text in texts]
    known = set(present)
    not_found = sorted(drop - known)
    keep = np.array([i for i, text in enumerate(present) if text not in drop], dtype=np.int64)
    kept = {present[i] for i in keep}
    new: list[str] = []
    unchanged: list[str] = []
    for text in add:
        if text in kept:
            unchanged.append(text)
        elif text not in new:
            new.append(text)
    if len(keep) + len(new) == 0:
        raise EditError("the edit would leave the repository empty")
    return EditPlan(keep, new, unchanged, not_found, removed=len(present) - len(keep))


def write_edited_index(
    out: Path,
    index: ResponseIndex,
    artifact: Artifact,
    plan: EditPlan,
    encode_responses: Callable[[list[str]], np.ndarray],
    source: str = "",
) -> int:
    """Writes ``index`` with ``plan`` applied to ``out``; returns its number of responses.

    Args:
        encode_responses: normalised texts in, response vectors out (the serving model's
            encoder, already compiled).
    """
    normalizer = Normalizer(artifact.config.normalization)
    added = [normalizer.response(text) for text in plan.add]
    new_vectors = (
        np.asarray(encode_responses(added), dtype=np.float32)
        if added
        else np.zeros((0, index.dim), dtype=np.float32)
    )
    vectors = np.concatenate([np.asarray(index.vectors[plan.keep], np.float32), new_vectors])
    texts = [index.texts[i] for i in plan.keep] + plan.add
    normalized = None
    if index.normalized is not None:  # load_index reads it whenever the index lists it
        normalized = [index.normalized[i] for i in plan.keep] + added
    lexical = None
    if index.lexical is not None and artifact.lexical is not None:
        new_rows = artifact.lexical.transform(added) if added else None
        kept_rows = index.lexical[plan.keep]
        lexical = sp.vstack([kept_rows, new_rows]).tocsr() if new_rows is not None else kept_rows
    sentence = None
    if index.sentence is not None and artifact.sentence_encoder is not None:
        new_sentences = artifact.sentence_encoder.encode(plan.add)  # the shown text, as built
        sentence = np.concatenate([np.asarray(index.sentence[plan.keep]), new_sentences])
    save_index(
        out,
        vectors,
        texts,
        artifact,
        source=source or str(index.manifest.get("source", "")),
        lexical=lexical,
        normalized=normalized,
        display=str(index.manifest.get("display", "raw")),
        ann="ann" in index.manifest,
        sentence=sentence,
    )
    return len(texts)
