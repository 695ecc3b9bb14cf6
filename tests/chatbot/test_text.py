import pytest

from chatbot.text import Normalizer, join_turns, join_utterances, split_turns, tokenize
from chatbot.wordnet import WordNetMissingError, find_wordnet


def _has_wordnet() -> bool:
    try:
        find_wordnet()
    except WordNetMissingError:
        return False
    return True


def test_tokenize_follows_treebank_conventions():
    assert tokenize("It doesn't work.") == ["It", "does", "n't", "work", "."]
    assert tokenize("First. Second!") == ["First", ".", "Second", "!"]


def test_tokenize_mode_lowercases_and_keeps_markers():
    n = Normalizer("tokenize")
    assert n.normalize("Hi THERE! __eou__ __eot__ ok") == "hi there ! __eou__ __eot__ ok"


def test_none_mode_only_splits():
    assert Normalizer("none").tokens(" a  B\tc ") == ["a", "B", "c"]


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown normalisation mode"):
        Normalizer("stem")


@pytest.mark.skipif(
    not _has_wordnet(), reason="WordNet data not installed (apt-get install wordnet-base)"
)
def test_udc_mode_stems_then_lemmatises_like_the_official_files():
    # The official files read "anyon know whi ... doe n't ... be" for such input.
    n = Normalizer("udc")
    out = n.normalize("Does anyone know why it doesn't work? It is used __eou__")
    assert out == "doe anyon know whi it doe n't work ? it be use __eou__"


def test_join_and_split_turns_round_trip():
    context = join_turns([["hi", "there"], ["yo"]])
    assert context == "hi __eou__ there __eou__ __eot__ yo __eou__ __eot__"
    assert split_turns(context) == ["hi there", "yo"]
    assert join_utterances(["a\tb", "c"]) == "a b __eou__ c __eou__"


def test_context_and_response_normalise_each_utterance():
    n = Normalizer("tokenize")
    assert n.context(["Hi!", ["How are", "you?"]]) == (
        "hi ! __eou__ __eot__ how are __eou__ you ? __eou__ __eot__"
    )
    assert n.response("Fine, thanks.") == "fine , thanks . __eou__"


def test_word_tokenizer_on_stdlib_re_matches_nltk_own():
    """The tokeniser's patterns recompiled with ``re`` (for speed) tokenise exactly as NLTK's
    own tokeniser, on text full of what its patterns handle: quotes, contractions, dots,
    brackets, dashes, colons and commas, Unicode quotes."""
    import random

    from nltk.tokenize import NLTKWordTokenizer

    from chatbot.text import _word_tokenizer

    pieces = [
        "don't", "I'm", "they'll", "can't", "O'Neil", "'quoted'", '"double"', "``tick''",
        "«fr»", "“curly”", "‘single’", "a.b", "end.", "...", "--", "—", "(x)", "[y]", "{z}",
        "<w>", "3.88", "$5", "10:30", "a:b", "x,y", "1,000", "#tag", "@nick", "50%", "a&b",
        "what?", "wow!", "*bold*", "http://ex.com/a?b=c", "/etc/fstab", "~/.bashrc", "C:\\dir",
        "'tis", "gonna", "wanna", "e.g.", "U.S.", ";", "'", "''", "é", "naïve", "\t", "  ",
    ]  # fmt: skip
    rng = random.Random(7)
    ours, nltk_own = _word_tokenizer(), NLTKWordTokenizer()
    for _ in range(3000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " ", " ", "  "]) for _ in range(12))
        assert ours.tokenize(text) == nltk_own.tokenize(text), text
