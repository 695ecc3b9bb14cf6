"""The verb lemmatiser of the ``udc`` normalisation against NLTK's own WordNet reader."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from chatbot.wordnet import (
    VERB_EXCEPTIONS,
    VERB_SUFFIXES,
    VerbMorphy,
    WordNetMissingError,
    find_wordnet,
    verb_lemmatizer,
)


def _wordnet() -> Path | None:
    try:
        return find_wordnet()
    except WordNetMissingError:
        return None


needs_wordnet = pytest.mark.skipif(
    _wordnet() is None, reason="WordNet data not installed (apt-get install wordnet-base)"
)


def _nltk_reader(data: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """NLTK's WordNetCorpusReader over ``data``, in a folder with the ``lexnames`` file it
    wants (Debian does not ship it; morphy never reads it, so any 45 names do), below a
    root on NLTK's data path (it reads nowhere else)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(tmp)])

    class Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:  # needs index.sense; unused
            return None

    folder = tmp / "corpora" / "wordnet"
    folder.mkdir(parents=True)
    for name in ("adj", "adv", "noun", "verb"):
        for kind in (f"index.{name}", f"data.{name}", f"{name}.exc"):
            shutil.copyfile(data / kind, folder / kind)  # it refuses links out of its root
    (folder / "lexnames").write_text("".join(f"{i:02d}\tfile.{i}\t1\n" for i in range(45)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Reader(str(folder), None)


@needs_wordnet
def test_every_verb_form_gets_the_lemma_nltk_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _wordnet()
    assert data is not None
    ours = VerbMorphy.read(data)
    nltk_reader = _nltk_reader(data, tmp_path, monkeypatch)
    # Every verb with every suffix the rules strip, every irregular form, and words that
    # are no verb at all.
    words = set(ours.exceptions)
    for verb in ours.verbs:
        words.update(verb + suffix for suffix, _ in VERB_SUFFIXES)
        words.update((verb + suffix).replace("ee", "e") for suffix in ("d", "s"))
    words.update(["tables", "ubuntu", "wifi", "n't", "doe", "'s", "12.04", "", "s", "ies"])
    assert len(words) > 70_000
    for word in sorted(words):
        lemmas = nltk_reader._morphy(word, "v")
        expected = min(lemmas, key=len) if lemmas else word
        assert ours.lemma(word) == expected, word


@needs_wordnet
def test_the_lemmatiser_of_a_process_reads_two_small_files() -> None:
    lemma = verb_lemmatizer()
    # WordNet lists "instal" as the base of "installing" (verb.exc), and so did NLTK.
    assert [lemma(w) for w in ("was", "installing", "upgraded", "stopped", "tables")] == [
        "be",
        "instal",
        "upgrade",
        "stop",
        "table",
    ]
    assert verb_lemmatizer() is lemma  # one per process


def test_a_folder_without_the_verb_files_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / VERB_EXCEPTIONS).write_text("went go\n")
    monkeypatch.setenv("CHATBOT_WORDNET_DIR", str(tmp_path))
    with pytest.raises(WordNetMissingError, match=r"lacks index\.verb"):
        find_wordnet()
