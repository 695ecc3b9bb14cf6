"""Index edits: the right rows stay, additions are encoded by the model, nothing else moves."""

from __future__ import annotations

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.index import load_index
from chatbot.index_edits import EditError, plan_edit, write_edited_index
from chatbot.ranker import Ranker
from tests.helpers import BUNDLE_TEXTS, tiny_bundle


def test_plan_keeps_order_drops_removed_and_skips_known_additions():
    plan = plan_edit(["a", "b", "c"], add=[" d ", "a", "d"], remove=["b", "zzz"])
    assert plan.keep.tolist() == [0, 2]
    assert (plan.add, plan.unchanged, plan.removed) == (["d"], ["a"], 1)
    assert plan.not_found == ["zzz"]


def test_a_text_removed_and_added_is_removed_first_then_added_anew():
    plan = plan_edit(["a", "x"], add=["x"], remove=["x"])
    assert (plan.keep.tolist(), plan.add, plan.removed) == ([0], ["x"], 1)


def test_a_blank_addition_is_refused():
    with pytest.raises(EditError, match=r"add\[0\] is empty"):
        plan_edit(["a"], add=["  "], remove=[])


@pytest.mark.parametrize("hybrid", [True, False])
def test_an_edited_index_matches_one_built_from_scratch(tmp_path, hybrid):
    model_dir, index_dir = tiny_bundle(tmp_path / "old", hybrid=hybrid)
    artifact = load_artifact(model_dir)
    old = load_index(index_dir, artifact)
    encoder = artifact.encoder()
    plan = plan_edit(old.texts, add=["See you later!"], remove=["My name is Bot."])

    write_edited_index(tmp_path / "new", old, artifact, plan, encoder.encode_responses)

    new = load_index(tmp_path / "new", artifact)
    expected = [t for t in BUNDLE_TEXTS if t != "My name is Bot."] + ["See you later!"]
    assert list(new.texts) == expected
    fresh = encoder.encode_responses([encoder.normalizer.response(t) for t in expected])
    np.testing.assert_allclose(new.vectors, fresh, atol=1e-5)
    assert new.manifest["model_checksum"] == artifact.checksum
    if hybrid:
        assert artifact.lexical is not None and new.lexical is not None
        rows = artifact.lexical.transform([encoder.normalizer.response(t) for t in expected])
        np.testing.assert_allclose(new.lexical.toarray(), rows.toarray(), atol=1e-6)
    ranker = Ranker.load(model_dir, tmp_path / "new")
    best = ranker.respond([["see you later"]], k=len(expected))[0]
    assert "See you later!" in [hit.text for hit in best]


def test_an_edit_that_empties_the_repository_is_refused():
    with pytest.raises(EditError, match="empty"):
        plan_edit(["a", "b"], add=[], remove=["b", "a"])
