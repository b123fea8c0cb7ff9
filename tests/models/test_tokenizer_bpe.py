"""train_bpe (Sennrich et al. 2016) and the text steps it shares with the tokenizer."""
import functools
import random

import pytest
from helpers import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from minildm.models.bpe import (BYTE_DECODER, BYTE_ENCODER, base_vocabulary, load_vocab, merge_pair, normalize,
                                pre_tokenize, save_vocab, train_bpe, word_symbols)
from minildm.models.tokenizer import CLIPTokenizer

# Sennrich et al.'s example: "low" x5, "lower" x2, "newest" x6, "widest" x3.
SENNRICH = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]
N_BASE = 512 + 2  # bytes, bytes + </w>, the two special tokens
CORPUS = (FIXTURES / "tokenizer" / "corpus.txt").read_text(encoding="utf-8").splitlines()


def test_byte_table_is_a_bijection_onto_printable_characters():
    assert sorted(BYTE_ENCODER) == list(range(256))
    assert len(set(BYTE_ENCODER.values())) == 256 and all(c.isprintable() and not c.isspace()
                                                          for c in BYTE_ENCODER.values())
    assert BYTE_ENCODER[ord("a")] == "a" and BYTE_ENCODER[ord(" ")] == "Ġ"  # space is "Ġ", as in GPT-2 and CLIP
    assert all(BYTE_DECODER[c] == b for b, c in BYTE_ENCODER.items())


def test_text_steps():
    assert normalize("  A\u3000Cafe\u0301\t\nΣΣ ") == " a café σσ "  # NFC; whitespace runs -> " "; per-char lower
    assert pre_tokenize("it's a café, 2024!") == ["it", "'s", "a", "café", ",", "2", "0", "2", "4", "!"]
    assert pre_tokenize("x<|endoftext|>'s") == ["x", "<|", "endoftext", "|>", "'s"]
    assert word_symbols("é") == ("Ã", "©</w>")  # two UTF-8 bytes, the last one ends the word
    assert merge_pair(("a", "a", "a", "b"), ("a", "a")) == ("aa", "a", "b")


def test_most_frequent_pair_is_merged_first():
    """Pair counts, weighted by word frequency: (e, s) 9, (s, t</w>) 9, (w, e) 8, (l, o) 7, (n, e) 6, ...

    (e, s) and (s, t</w>) tie at 9; the tie goes to the pair that sorts first, (e, s). Then (es, t</w>) occurs
    9 times, and next is (l, o) with 7 (newest's (w, e) became (w, es))."""
    vocab, merges = train_bpe(SENNRICH, N_BASE + 3)
    assert merges == [("e", "s"), ("es", "t</w>"), ("l", "o")]
    assert len(vocab) == N_BASE + 3
    assert list(vocab)[512:] == ["es", "est</w>", "lo", "<|startoftext|>", "<|endoftext|>"]
    assert list(vocab)[:512] == base_vocabulary() and list(vocab.values()) == list(range(len(vocab)))


def test_vocab_size_is_respected():
    for size in (N_BASE, N_BASE + 1, 600, 800):
        vocab, merges = train_bpe(CORPUS, size)
        assert len(vocab) == size and len(merges) == size - N_BASE
    vocab, merges = train_bpe(SENNRICH, 10_000)  # the corpus runs out of pairs seen twice long before
    assert len(vocab) < 10_000 and merges
    with pytest.raises(ValueError, match="vocab_size=100 is too small"):
        train_bpe(SENNRICH, 100)
    assert train_bpe(SENNRICH, 10_000, min_frequency=10)[1] == []  # the best pair occurs only 9 times


def test_training_is_deterministic_and_ignores_corpus_order():
    shuffled = CORPUS[:]
    random.Random(0).shuffle(shuffled)
    assert train_bpe(CORPUS, 700) == train_bpe(shuffled, 700)


def test_committed_fixture_vocabulary_is_reproduced():
    """The fixture files were written by train_bpe on corpus.txt (scripts/fixtures/tokenizer.py)."""
    assert train_bpe(CORPUS, 800) == load_vocab(FIXTURES / "tokenizer")


def test_every_training_word_becomes_one_token_when_training_runs_to_the_end():
    """Encoding applies merges by rank, training applied them in the same order: on words seen in training, with
    no vocabulary limit and min_frequency=1, both end in a single symbol per word."""
    vocab, merges = train_bpe(CORPUS, 100_000, min_frequency=1)
    tok = CLIPTokenizer(vocab, merges)
    words = {word for text in CORPUS for word in pre_tokenize(normalize(text))}
    assert all(len(tok.bpe(word)) == 1 for word in words)


def test_saved_files_load_back(tmp_path):
    vocab, merges = train_bpe(SENNRICH, N_BASE + 6)
    save_vocab(tmp_path, vocab, merges)
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()[:2] == ["#version: 0.2", "e s"]
    assert load_vocab(tmp_path) == (vocab, merges)
    tok = CLIPTokenizer.from_pretrained(tmp_path)
    assert tok.tokenize("newest lowest") == ["newest</w>", "lo", "w", "est</w>"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


@functools.cache
def small_tokenizer():
    return CLIPTokenizer(*train_bpe(CORPUS, 600))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_decode_inverts_encode_up_to_word_spacing(text):
    """decode(encode(t)) is the normalized text with exactly one space between words (CLIP's decoder puts one
    after every word). ``strip`` as the decoder does: Python also strips U+001C..U+001F, which CLIP keeps as words."""
    tok = small_tokenizer()
    if "<|" in text:
        return  # special-token strings decode to themselves, not to their words
    expected = " ".join(pre_tokenize(normalize(text))).strip()
    assert tok.decode(tok.encode(text), skip_special_tokens=True) == expected


def test_decode_recovers_normalized_captions():
    tok = CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer")
    for caption in ["A Large Red Circle at the TOP LEFT", "two  tiny\tgreen stars", "a pink hexagon inside a ring"]:
        assert tok.decode(tok.encode(caption), skip_special_tokens=True) == normalize(caption).strip()
