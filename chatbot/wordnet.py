"""The verb lemmatiser of the ``udc`` normalisation: WordNet 3.0's morphy, for verbs only.

The UDC v2 recipe lemmatises each token as a verb (NLTK's ``lemmatize(word, pos='v')``).
That needs two WordNet files: the verbs' lemmas (``index.verb``) and their irregular forms
(``verb.exc``). NLTK's reader loads the whole database into Python objects first, 160 MiB
in every process that normalises (each serving worker), so :class:`VerbMorphy` reads just
those two files (a few MiB) and applies NLTK 3.10's morphy rules for verbs, with the same
results (``tests/chatbot/test_wordnet.py`` compares the two on every verb form).

The data is looked for, in order, in ``$CHATBOT_WORDNET_DIR``, in NLTK's own data path
(``corpora/wordnet``), and in Debian's ``wordnet-base`` package (``/usr/share/wordnet``).

Example:
    >>> morphy = VerbMorphy({"run", "install", "be"}, {"ran": ["run"], "is": ["be"]})
    >>> [morphy.lemma(w) for w in ("runs", "installed", "is", "ran", "tables")]
    ['run', 'install', 'be', 'run', 'tables']
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from chatbot.errors import ChatbotError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
VERB_INDEX = "index.verb"
VERB_EXCEPTIONS = "verb.exc"
_REQUIRED = (VERB_INDEX, VERB_EXCEPTIONS)
# NLTK's MORPHOLOGICAL_SUBSTITUTIONS for verbs, in its order (the order decides ties).
VERB_SUFFIXES = (
    ("s", ""),
    ("ies", "y"),
    ("es", "e"),
    ("es", ""),
    ("ed", "e"),
    ("ed", ""),
    ("ing", "e"),
    ("ing", ""),
)

MISSING_HELP = (
    "the 'udc' normalisation lemmatises with WordNet 3.0, and no WordNet data was found. "
    "Install it with `apt-get install wordnet-base` (Debian/Ubuntu), or point "
    "CHATBOT_WORDNET_DIR at a folder holding the WordNet 3.0 dict files "
    "(index.verb, verb.exc, ...)."
)


class WordNetMissingError(ChatbotError, RuntimeError):
    """No WordNet data could be found."""


class VerbMorphy:
    """WordNet's morphy for verbs: a word's base forms that are verbs.

    Args:
        verbs: the verbs' lemmas (``index.verb``).
        exceptions: irregular forms and their bases (``verb.exc``).
    """

    def __init__(self, verbs: Collection[str], exceptions: Mapping[str, list[str]]) -> None:
        self.verbs = frozenset(verbs)
        self.exceptions = dict(exceptions)

    @classmethod
    def read(cls, folder: Path) -> VerbMorphy:
        """The lemmatiser of the WordNet data in ``folder``."""
        with (folder / VERB_INDEX).open(encoding="utf-8") as f:
            # Lines starting with a space are the licence; a lemma line starts with it.
            verbs = [line.split(" ", 1)[0] for line in f if not line.startswith(" ")]
        exceptions = {}
        with (folder / VERB_EXCEPTIONS).open(encoding="utf-8") as f:
            for line in f:
                terms = line.split()
                if terms:
                    exceptions[terms[0]] = terms[1:]
        return cls(verbs, exceptions)

    def bases(self, word: str) -> list[str]:
        """NLTK's ``_morphy(word, "v")``: the word itself and its irregular bases, or else
        what each suffix rule makes of it, those that are verbs, first seen first."""
        if word in self.exceptions:
            forms = self.exceptions[word]
        else:
            forms = [word[: -len(old)] + new for old, new in VERB_SUFFIXES if word.endswith(old)]
        return list(dict.fromkeys(f for f in [word, *forms] if f in self.verbs))

    def lemma(self, word: str) -> str:
        """The shortest base (the first of equal length), or the word itself when none is a
        verb: NLTK's ``lemmatize(word, pos="v")``."""
        bases = self.bases(word)
        return min(bases, key=len) if bases else word


def _has_data(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED)


def _nltk_folder() -> Path | None:
    import nltk

    for base in nltk.data.path:
        folder = Path(base) / "corpora" / "wordnet"
        if _has_data(folder):
            return folder
    return None


def find_wordnet() -> Path:
    """The folder of a usable WordNet 3.0 database, or :class:`WordNetMissingError`."""
    configured = os.environ.get("CHATBOT_WORDNET_DIR")
    if configured:
        folder = Path(configured)
        if not _has_data(folder):
            raise WordNetMissingError(
                f"CHATBOT_WORDNET_DIR={configured} lacks {', '.join(_REQUIRED)}. {MISSING_HELP}"
            )
        return folder
    found = _nltk_folder()
    if found is not None:
        return found
    if _has_data(DEBIAN_WORDNET):
        return DEBIAN_WORDNET
    raise WordNetMissingError(MISSING_HELP)


@functools.cache
def verb_lemmatizer() -> Callable[[str], str]:
    """``lemma(word)``: WordNet's morphy as a verb, as NLTK's ``lemmatize(word, pos='v')``;
    one per process. Not memoised here: a :class:`~chatbot.text.Normalizer` remembers each
    token's stem and lemma together."""
    return VerbMorphy.read(find_wordnet()).lemma
