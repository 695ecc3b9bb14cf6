"""Locates WordNet 3.0 data for the verb lemmatiser of the ``udc`` normalisation.

``nltk.download`` cannot reach its server on many machines, so the data is looked for, in
order, in ``$CHATBOT_WORDNET_DIR``, in NLTK's own data path, and in Debian's ``wordnet-base``
package (``/usr/share/wordnet``). NLTK's reader also wants a ``lexnames`` file, which
Debian does not ship; it is the fixed list of lexicographer files of lexnames(5), so it is
written next to links to the Debian files in a cache folder.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from chatbot.errors import ChatbotError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
_REQUIRED = ("index.verb", "verb.exc", "data.verb")

# lexnames(5): file number -> lexicographer file name; the third column is the syntactic
# category (1 noun, 2 verb, 3 adjective, 4 adverb).
_NOUN_FILES = (
    "Tops act animal artifact attribute body cognition communication event feeling food group "
    "location motive object person phenomenon plant possession process quantity relation shape "
    "state substance time"
)
_VERB_FILES = (
    "body change cognition communication competition consumption contact creation emotion "
    "motion perception possession social stative weather"
)
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    *(f"noun.{n}" for n in _NOUN_FILES.split(" ")),
    *(f"verb.{n}" for n in _VERB_FILES.split(" ")),
    "adj.ppl",
]
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

MISSING_HELP = (
    "the 'udc' normalisation lemmatises with WordNet 3.0, and no WordNet data was found. "
    "Install it with `apt-get install wordnet-base` (Debian/Ubuntu), or point "
    "CHATBOT_WORDNET_DIR at a folder holding the WordNet 3.0 dict files "
    "(index.verb, verb.exc, ...)."
)


class WordNetMissingError(ChatbotError, RuntimeError):
    """No WordNet data could be found."""


def _has_data(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED)


def _nltk_folder() -> Path | None:
    import nltk

    for base in nltk.data.path:
        folder = Path(base) / "corpora" / "wordnet"
        if _has_data(folder) and (folder / "lexnames").is_file():
            return folder
    return None


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "chatbot" / "nltk_data"


def _in_nltk_layout(folder: Path) -> Path:
    """A copy of ``folder`` under an NLTK data root, with a ``lexnames`` file added.

    NLTK only reads corpora below a folder on ``nltk.data.path`` (and resolves links), so
    the files are copied (about 35 MB, once) rather than linked.
    """
    import nltk

    root = _cache_root()
    cache = root / "corpora" / "wordnet"
    cache.mkdir(parents=True, exist_ok=True)
    for src in folder.iterdir():
        dst = cache / src.name
        if src.is_file() and not dst.exists():
            tmp = dst.with_suffix(dst.suffix + ".part")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    if (cache / "lexnames").is_file():
        return cache
    lexnames = "".join(
        f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
    )
    (cache / "lexnames").write_text(lexnames)
    return cache


def find_wordnet() -> Path:
    """The folder of a usable WordNet 3.0 database, or :class:`WordNetMissingError`."""
    configured = os.environ.get("CHATBOT_WORDNET_DIR")
    if configured:
        folder = Path(configured)
        if not _has_data(folder):
            raise WordNetMissingError(
                f"CHATBOT_WORDNET_DIR={configured} lacks {', '.join(_REQUIRED)}. {MISSING_HELP}"
            )
        return _in_nltk_layout(folder)
    found = _nltk_folder()
    if found is not None:
        return found
    if _has_data(DEBIAN_WORDNET):
        return _in_nltk_layout(DEBIAN_WORDNET)
    raise WordNetMissingError(MISSING_HELP)


@functools.cache
def verb_lemmatizer() -> Callable[[str], str]:
    """``lemma(word)``: WordNet's morphy as a verb, as NLTK's ``lemmatize(word, pos='v')``."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _MorphyReader(WordNetCorpusReader):
        # The version mapping serves multilingual look-ups only and needs index.sense,
        # which Debian's wordnet-base lacks; morphy needs neither.
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions not available"
        reader = _MorphyReader(str(find_wordnet()), None)

    @functools.lru_cache(maxsize=200_000)
    def lemma(word: str) -> str:
        lemmas = reader._morphy(word, "v")
        return min(lemmas, key=len) if lemmas else word

    return lemma
