"""CLIPTokenizer equals transformers' CLIPTokenizer, token for token, on a vocabulary trained by our train_bpe.

Golden outputs come from scripts/fixtures/tokenizer.py (transformers >= 5) on tests/fixtures/tokenizer/: a few
hundred strings (punctuation, numbers, accents, CJK, emoji, odd whitespace, special tokens, long prompts), padded
and truncated batches, decodings, and how the reference splits every Unicode code point.
"""
import json
import sys
import unicodedata

import numpy as np
import pytest
from helpers import FIXTURES, load_fixture

from minildm.models.bpe import pre_tokenize
from minildm.models.tokenizer import CLIPTokenizer

PARITY = json.loads((FIXTURES / "tokenizer_parity.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tok():
    return CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer")


def test_fixture_vocabulary_has_clip_layout(tok):
    assert tok.model_max_length == 77  # read from tokenizer_config.json
    assert tok.vocab_size == 800
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (798, 799, 799)
    # 256 byte characters (printable ones first, "Ń" stands for byte 0xAD), then the same with </w>
    assert tok.convert_ids_to_tokens([0, 255, 256, 511]) == ["!", "Ń", "!</w>", "Ń</w>"]


@pytest.mark.parametrize("i", range(len(PARITY["cases"])))
def test_tokens_ids_and_decoding_match_reference(tok, i):
    case = PARITY["cases"][i]
    text = case["text"]
    assert tok.tokenize(text) == case["tokens"], f"tokens of {text!r}"
    assert tok.encode(text) == case["ids"], f"ids of {text!r}"
    assert tok(text, padding=False, truncation=False, return_tensors=None)["input_ids"] == case["ids"]
    assert tok.decode(case["ids"]) == case["decoded"]
    assert tok.decode(case["ids"], skip_special_tokens=True) == case["decoded_skip_special"]


@pytest.mark.parametrize("batch", PARITY["batches"], ids=lambda b: "-".join(f"{k}={v}" for k, v in b["kwargs"].items()))
def test_padded_truncated_batches_match_reference(tok, batch):
    texts = [PARITY["cases"][i]["text"] for i in batch["texts"]]
    enc = tok(texts, return_tensors="np", **batch["kwargs"])
    assert enc.input_ids.dtype == np.int64 and enc.attention_mask.dtype == np.int64
    np.testing.assert_array_equal(enc.input_ids, np.array(batch["input_ids"]))
    np.testing.assert_array_equal(enc.attention_mask, np.array(batch["attention_mask"]))


def test_pad_token_variant_matches_reference():
    """pad_token="!" as in Stable Diffusion v2: "!" in a prompt then becomes the special token, as in transformers."""
    variant = PARITY["pad_variant"]
    tok = CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer", **variant["overrides"])
    texts = [PARITY["cases"][i]["text"] for i in variant["texts"]]
    assert [tok.tokenize(t) for t in texts] == variant["tokens"]
    enc = tok(texts, max_length=variant["max_length"])
    np.testing.assert_array_equal(enc.input_ids, np.array(variant["input_ids"]))
    np.testing.assert_array_equal(enc.attention_mask, np.array(variant["attention_mask"]))
    assert tok.batch_decode(enc.input_ids, skip_special_tokens=True) == variant["decoded_skip_special"]


def test_truncated_prompts_keep_bos_first_and_eos_last(tok):
    long = [c["text"] for c in PARITY["cases"] if len(c["ids"]) > 77]
    assert long, "the fixture should hold prompts longer than 77 tokens"
    enc = tok(long)
    assert enc.input_ids.shape == (len(long), 77)
    assert (enc.input_ids[:, 0] == tok.bos_token_id).all() and (enc.input_ids[:, -1] == tok.eos_token_id).all()
    assert enc.attention_mask.all()


def test_decoding_arbitrary_ids_matches_reference(tok):
    """Random id runs cut multi-byte characters in half: both sides must replace the broken bytes the same way."""
    for case in PARITY["decodes"]:
        assert tok.decode(case["ids"]) == case["decoded"], case["ids"]
        assert tok.decode(case["ids"], skip_special_tokens=True) == case["decoded_skip_special"], case["ids"]


def _runs():
    table = load_fixture("tokenizer_unicode_classes.npz")
    starts = table["starts"].tolist() + [sys.maxunicode + 1]
    for start, stop, kind in zip(starts, starts[1:], table["classes"].tolist()):
        # Only code points this Python's Unicode database knows: an unassigned one cannot be classified here.
        chars = "".join(chr(cp) for cp in range(start, stop) if unicodedata.category(chr(cp)) != "Cn")
        yield chr(kind), chars


def test_word_pattern_classifies_every_code_point_like_the_reference():
    """Our ``re`` classes equal the reference's \\p{L} / \\p{N} / \\s on every assigned code point.

    Each run of same-class code points is checked at once: letters must join into one word, other symbols into
    one word, whitespace must vanish, and numbers must stand alone even between letters and between symbols.
    """
    for kind, chars in _runs():
        if not chars or kind == "U":  # U: surrogates, not text
            continue
        if kind == "L":
            assert pre_tokenize(chars) == [chars], "letters that do not join"
        elif kind == "O":
            assert pre_tokenize(chars) == [chars], "symbols that do not join"
        elif kind == "S":
            assert pre_tokenize(chars) == [], "whitespace that is kept"
        else:
            assert kind == "N"
            for glue in ("x", "!"):
                expected = [w for c in chars for w in (c, glue)][:-1]
                assert pre_tokenize(glue.join(chars)) == expected, f"numbers not alone between {glue!r}"
