import pytest
from hypothesis import given, settings, strategies as st

from runtime.errors import TokenizerError
from runtime.tokenizer import DEFAULT_ALPHABET, SPECIALS, Tokenizer

tok = Tokenizer()


def test_layout():
    assert tok.vocab_size == 103 and tok.pad_id == 0 and tok.bos_id == 1 and tok.end_answer_id == 6
    for i, s in enumerate(SPECIALS):
        assert tok.encode(s) == [i]


def test_specials_are_single_tokens_inside_text():
    ids = tok.encode("<think>1+2=3</think><answer>3</answer>")
    assert ids[0] == tok.think_id and ids[-1] == tok.end_answer_id and len(ids) == 1 + 5 + 1 + 1 + 1 + 1
    assert tok.encode("a<b") == [tok._char_id[c] for c in "a<b"]       # a lone '<' is a character
    assert tok.encode("</thin") == [tok._char_id[c] for c in "</thin"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(DEFAULT_ALPHABET) + list(SPECIALS)), max_size=40))
def test_round_trip(pieces):
    text = "".join(pieces)
    assert tok.decode(tok.encode(text)) == text


def test_unknown_character_names_character_code_point_and_position():
    with pytest.raises(TokenizerError) as e:
        tok.encode("What is 2\u00d73?")
    msg = str(e.value)
    assert "'\u00d7'" in msg and "U+00D7" in msg and "position 9" in msg and "printable ASCII" in msg
    with pytest.raises(TokenizerError, match=r"U\+0009\) at position 0"):
        tok.encode("\tx")


def test_decode_rejects_bad_ids_and_can_skip_specials():
    assert tok.decode(tok.encode("<think>hi</think>"), skip_special=True) == "hi"
    with pytest.raises(TokenizerError, match="token id 103 at position 1 is outside the vocabulary"):
        tok.decode([5, 103])


def test_dict_round_trip_and_validation():
    assert Tokenizer.from_dict(tok.to_dict()) == tok
    bad = [({"type": "bpe", "specials": list(SPECIALS), "alphabet": "ab"}, "only 'char'"),
           ({"type": "char", "specials": ["<pad>"], "alphabet": "ab"}, "lacks '<bos>'"),
           ({"type": "char", "specials": list(SPECIALS), "alphabet": "aa"}, "repeats the character 'a'"),
           ({"type": "char", "specials": list(SPECIALS), "alphabet": 5}, "'alphabet' must be a string"),
           ({"type": "char", "specials": list(SPECIALS), "alphabet": "a", "x": 1}, "unknown field 'x'"),
           ({"type": "char", "specials": list(SPECIALS), "alphabet": "a", "places": 1}, "'places' must be true or false"),
           ([1], "expected a mapping")]
    for d, msg in bad:
        with pytest.raises(TokenizerError, match=msg) as e:
            Tokenizer.from_dict(d, source="model.msgpack: tokenizer")
        assert str(e.value).startswith("model.msgpack: tokenizer")
