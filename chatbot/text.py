"""Text normalisation, reproducing how the official UDC v2 files were preprocessed.

The UDC v2 generator (``generate.sh -t -s -l``) tokenised each row with NLTK's
``word_tokenize``, then Snowball-stemmed every token (which also lower-cases it), then
lemmatised the stem with WordNet as a verb (``is`` -> ``be``). The order matters: stemming
comes first, so ``anyone`` -> ``anyon`` and ``used`` -> ``use``.

Three modes are offered; a model artifact records which one it was trained with:

* ``udc``: tokenise + stem + lemmatise, as the official files (needs WordNet data).
* ``tokenize``: tokenise + lower-case (no external data), for corpora such as chitchat.
* ``none``: split on whitespace; text is assumed to be normalised already.

Example:
    >>> Normalizer("tokenize").normalize("Hello, World!")
    'hello , world !'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # NLTK is imported when first used: it pulls in scipy and pandas, which
    # processes that only read EOU or split_turns (the server's supervisor) need not hold.
    from nltk.stem.snowball import SnowballStemmer
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

EOU = "__eou__"  # end of utterance
EOT = "__eot__"  # end of turn
MARKERS = frozenset({EOU, EOT})

NormalizationMode = Literal["udc", "tokenize", "none"]
MODES: tuple[str, ...] = ("udc", "tokenize", "none")

_WHITESPACE = re.compile(r"\s+")
# The flags of a compiled pattern that `re` understands (NLTK's `regex` patterns carry more).
_RE_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII | re.UNICODE


@functools.cache
def _sentence_splitter() -> PunktSentenceTokenizer:
    # An untrained Punkt model needs no downloaded data; it misses only the trained English
    # abbreviation list, which matters little for chat text.
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer()


@functools.cache
def _word_tokenizer() -> NLTKWordTokenizer:
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    # NLTK 3.10 runs each of the tokeniser's ~30 fixed patterns on the third-party `regex`
    # engine under a timeout (nltk.redos), which doubles what normalising a request costs.
    # The same patterns on `re` give the same tokens (tests/chatbot/test_text.py) in half
    # the time. Neither backtracks badly: 10,000-character runs of quotes, dots, brackets or
    # dashes take `re` at most 21 ms (`regex` 48 ms), and the service accepts at most
    # 10,000 characters a turn.
    for name in dir(NLTKWordTokenizer):
        if name.isupper():  # the pattern tables: STARTING_QUOTES, PUNCTUATION, ...
            setattr(tokenizer, name, _on_stdlib_re(getattr(NLTKWordTokenizer, name)))
    return tokenizer


def _on_stdlib_re(table: object) -> object:
    """``table`` with every compiled pattern in it recompiled by :mod:`re`.

    Example:
        >>> from nltk import redos
        >>> [(pattern, sub)] = _on_stdlib_re([(redos.compile(r"(?i)a+"), "b")])
        >>> type(pattern) is re.Pattern, pattern.sub(sub, "xAAy")
        (True, 'xby')
    """
    if isinstance(table, list | tuple):
        return type(table)(_on_stdlib_re(item) for item in table)
    pattern = getattr(table, "pattern", None)
    if isinstance(pattern, str) and hasattr(table, "sub"):
        return re.compile(pattern, int(table.flags) & _RE_FLAGS)  # type: ignore[attr-defined]
    return table


@functools.cache
def _stemmer() -> SnowballStemmer:
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


def tokenize(text: str) -> list[str]:
    """Treebank-style tokens, as ``nltk.word_tokenize`` makes them (``doesn't`` -> ``does n't``)."""
    words = _word_tokenizer()
    return [tok for sent in _sentence_splitter().tokenize(text) for tok in words.tokenize(sent)]


TOKEN_CACHE_SIZE = 1 << 17  # distinct tokens whose normal form a Normalizer remembers


class Normalizer:
    """Turns raw text into the token form a model was trained on.

    Args:
        mode: one of ``udc``, ``tokenize``, ``none``.

    Example:
        >>> Normalizer("none").tokens("a  b")
        ['a', 'b']
    """

    def __init__(self, mode: str = "udc") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown normalisation mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self._lemmatize = None
        if mode == "udc":
            from chatbot.wordnet import verb_lemmatizer  # lazy: loads WordNet data

            self._lemmatize = verb_lemmatizer()
        # Stem and lemma depend on the token alone, and a few thousand tokens make most text:
        # remember them (bounded, so that odd input cannot grow it without end).
        self._udc_token = functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._stem_and_lemma)

    def tokens(self, text: str) -> list[str]:
        """Normalised tokens of one piece of text (markers such as ``__eou__`` are kept)."""
        if self.mode == "none":
            return text.split()
        out: list[str] = []
        # Markers must survive tokenisation untouched, so normalise the text between them.
        for piece in _split_keep_markers(text):
            if piece in MARKERS:
                out.append(piece)
            elif self.mode == "tokenize":
                out.extend(tok.lower() for tok in tokenize(piece))
            else:
                out.extend(self._udc_token(tok) for tok in tokenize(piece))
        return out

    def _stem_and_lemma(self, token: str) -> str:
        assert self._lemmatize is not None
        return self._lemmatize(_stemmer().stem(token))

    def normalize(self, text: str) -> str:
        """Normalised text, tokens joined by single spaces."""
        return " ".join(self.tokens(text))

    def context(self, turns: Sequence[str | Sequence[str]]) -> str:
        """A UDC-layout context from turns; a turn is one utterance or a list of them."""
        return join_turns([[self.normalize(u) for u in _as_list(turn)] for turn in turns])

    def response(self, utterances: str | Sequence[str]) -> str:
        """A UDC-layout response (one turn) from one utterance or a list of them."""
        return join_utterances([self.normalize(u) for u in _as_list(utterances)])


def _as_list(turn: str | Sequence[str]) -> list[str]:
    return [turn] if isinstance(turn, str) else list(turn)


def _split_keep_markers(text: str) -> Iterable[str]:
    buf: list[str] = []
    for word in text.split():
        if word in MARKERS:
            if buf:
                yield " ".join(buf)
                buf = []
            yield word
        else:
            buf.append(word)
    if buf:
        yield " ".join(buf)


def clean(text: str) -> str:
    """Collapses whitespace (tabs and newlines included) to single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def join_utterances(utterances: Iterable[str]) -> str:
    """``a __eou__ b __eou__``: one speaker's turn in UDC layout."""
    return " ".join(f"{clean(u)} {EOU}" for u in utterances)


def join_turns(turns: Iterable[Iterable[str]]) -> str:
    """``a __eou__ __eot__ b __eou__ __eot__``: a context in UDC layout."""
    return " ".join(f"{join_utterances(turn)} {EOT}" for turn in turns)


def split_turns(context: str) -> list[str]:
    """The turns of a UDC-layout context, markers removed, oldest first."""
    turns = []
    for chunk in context.split(EOT):
        words = [w for w in chunk.split() if w != EOU]
        if words:
            turns.append(" ".join(words))
    return turns
