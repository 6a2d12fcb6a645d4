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
           ({"type": "char", "specials": list(SPECIALS), "alphabet": "a", "items": "yes"},
            "'items' must be true or false"),
           ({"type": "char", "specials": list(SPECIALS), "alphabet": "a", "hints": 0},
            "'hints' must be true or false"),
           ([1], "expected a mapping")]
    for d, msg in bad:
        with pytest.raises(TokenizerError, match=msg) as e:
            Tokenizer.from_dict(d, source="model.msgpack: tokenizer")
        assert str(e.value).startswith("model.msgpack: tokenizer")


def test_items_mark_each_number_of_a_list_and_nothing_else():
    """mark_items: three or more numbers apart by spaces, commas or "and" are a list, each number after `#` and
    its item letter (from ITEMS[offset]); sums, pairs, decimals and lists too long for the letters stay."""
    from runtime.tokenizer import item_hints, mark_items
    cases = {"Sort 47 8 44": "Sort #A47 #B8 #C44",
             "Put 5, 3, 9 and 1 in order.": "Put #A5, #B3, #C9 and #D1 in order.",
             "sort 4,2,5,2.": "sort #A4,#B2,#C5,#D2.", "Sort the list [5, 3, 9]": "Sort the list [#A5, #B3, #C9]",
             "Arrange 5, 3, and 1 in ascending order.": "Arrange #A5, #B3, and #C1 in ascending order.",
             "What is 47+5?": "What is 47+5?", "Add 47 and 5.": "Add 47 and 5.", "Sort 10 92": "Sort 10 92",
             "What is 1.5 2 3?": "What is 1.5 2 3?", "Solve x^2-5x+6=0": "Solve x^2-5x+6=0",
             "Sort " + " ".join(["7"] * 27): "Sort " + " ".join(["7"] * 27)}
    for text, want in cases.items():
        assert mark_items(text) == want, text
    assert mark_items("Sort 47 8 44", 23) == "Sort #X47 #Y8 #Z44" and mark_items("Sort 47 8 44", 24) == "Sort 47 8 44"
    assert item_hints("Sort 47 8 47", 2) == [("C", "47"), ("D", "8"), ("E", "47")] and item_hints("Sort 1 2") == []
    tok = Tokenizer(places=True, items=True)
    assert tok.decode(tok.encode_prompt("Sort 47 8 44", 1, 2)) == "<bos>Sort #Cc4b7 #Db8 #Ec4b4"
    places = Tokenizer(places=True)
    assert places.decode(places.encode_prompt("Sort 47 8 44")) == "<bos>Sort b4a7 a8 b4a4"
    assert Tokenizer.from_dict(tok.to_dict()) == tok and tok != Tokenizer(places=True)
    assert "items" not in Tokenizer(places=True).to_dict()          # older files read as before


def test_an_items_model_answer_is_read_without_its_hints_in_text_and_stream():
    """decode_completion and the runtime's stream drop `#B` before a number of the answer (an items model),
    keep a `#` or capital that starts no hint, and leave a places-only model's answer as before."""
    from runtime.tokenizer import unmark_answer, unmark_stream
    tok = Tokenizer(places=True, items=True)
    done = "<think>0:B8 4:C4,A7</think><answer>#Ba8 #Cb4a4 #Ab4a7 #A Zb9 x#y #5</answer>"
    want = "<think>0:B8 4:C4,A7</think><answer>8 44 47 #A Z9 x#y #5</answer>"
    assert unmark_answer(done, items=True) == want == tok.decode_completion(tok.encode(done))
    assert "".join(unmark_stream((tok.token_str(i) for i in tok.encode(done)), items=True)) == want
    plain = "".join(unmark_stream(tok.token_str(i) for i in tok.encode(done)))
    assert plain == "<think>0:B8 4:C4,A7</think><answer>#B8 #C44 #A47 #A Z9 x#y #5</answer>" == unmark_answer(done)
    assert "".join(unmark_stream(iter(["<answer>", "#", "B"]), items=True)) == "<answer>#B"   # held, then let go


def test_a_hints_model_reads_its_prompt_as_it_is_and_its_answer_without_hints():
    """A tokenizer with hints (sort traces indexed and nth: the model writes its own hints) marks no prompt with
    items, decode_completion drops the answer's `#B` as an items model's (the stream: test_compile_runtime), the
    flag survives to_dict/from_dict, and a tokenizer without it writes no "hints" field (older files read so)."""
    tok = Tokenizer(places=True, hints=True)
    assert tok.decode(tok.encode_prompt("Sort 47 8 44")) == "<bos>Sort b4a7 a8 b4a4"
    done = "<think>0:A8 4:B4,C7</think><answer>#Aa8 #Bb4a4 #Cb4a7</answer>"
    assert tok.decode_completion(tok.encode(done)) == "<think>0:A8 4:B4,C7</think><answer>8 44 47</answer>"
    assert Tokenizer.from_dict(tok.to_dict()) == tok and tok != Tokenizer(places=True, items=True)
    assert tok.to_dict()["hints"] is True and "hints" not in Tokenizer(places=True, items=True).to_dict()
    assert tok.answer_hints and Tokenizer(items=True).answer_hints and not Tokenizer(places=True).answer_hints
