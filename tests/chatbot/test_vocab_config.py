import json

import pytest

from chatbot.config import ModelConfig, from_dict
from chatbot.vocab import PAD, UNK, Vocab


def test_vocab_orders_by_count_then_alphabet_and_caps_size():
    v = Vocab.build([["b", "a", "b", "c", "c", "d"]], max_size=4, min_count=1)
    # counts: b=2, c=2, a=1, d=1 -> b, c (ties alphabetical), then only 'a' fits in 4.
    assert v.words == [PAD, UNK, "b", "c"]


def test_vocab_min_count_and_unknown_words():
    v = Vocab.build([["x", "x", "y"]], max_size=10, min_count=2)
    assert v.encode(["x", "y", "z"]).tolist() == [2, 1, 1]


def test_vocab_truncation_keeps_first_or_last_tokens():
    v = Vocab.build([list("abcde")], max_size=10, min_count=1)
    assert v.encode(list("abcde"), max_len=2, keep="last").tolist() == v.encode(["d", "e"]).tolist()
    assert v.encode(list("abcde"), max_len=2).tolist() == v.encode(["a", "b"]).tolist()


def test_vocab_save_load_round_trip(tmp_path):
    v = Vocab.build([["hello", "world"]], max_size=10, min_count=1)
    v.save(tmp_path / "vocab.txt")
    assert Vocab.load(tmp_path / "vocab.txt").words == v.words


def test_vocab_rejects_a_file_without_special_tokens():
    with pytest.raises(ValueError, match="starts with"):
        Vocab(["a", "b"])


def test_config_round_trips_and_rejects_unknown_keys(tmp_path):
    config = ModelConfig(hidden_size=8, bidirectional=True)
    config.save(tmp_path / "config.json")
    assert ModelConfig.load(tmp_path / "config.json") == config
    assert config.encoding_dim == 16
    data = json.loads(config.to_json()) | {"hiden_size": 3}
    with pytest.raises(ValueError, match="unknown ModelConfig keys \\['hiden_size'\\]"):
        from_dict(ModelConfig, data)


@pytest.mark.parametrize("field,value", [("loss", "hinge"), ("dropout", 1.5), ("hidden_size", 0)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})
