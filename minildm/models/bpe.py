"""Byte-level byte-pair encoding (BPE) as CLIP uses it: text cleanup, word splitting, merges, and training.

BPE (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units") starts from single
symbols and repeatedly fuses the most frequent adjacent pair into a new symbol; the ordered list of fusions is the
"merges" file. CLIP (Radford et al. 2021) runs it on *bytes*, so no text is ever out of vocabulary, and marks the
last symbol of every word with ``</w>`` so that "red" at the end of a word and "red" inside "redo" differ.

The pipeline from a string to the symbols BPE sees, shared by the tokenizer and by ``train_bpe``:

    "A  Café!"  --normalize-->  "a café!"  --pre_tokenize-->  ["a", "café", "!"]
                --word_symbols-->  ["a</w>"], ["c", "a", "f", "Ã", "©</w>"], ["!</w>"]

Reference behaviour: transformers >= 5 ``CLIPTokenizer`` (built on the ``tokenizers`` library; ftfy plays no part).
Older pipelines differ on rare inputs: OpenAI's CLIP also runs ftfy and HTML unescaping, and transformers 4's slow
tokenizer without ftfy used BERT's cleanup (dropping control characters, putting spaces around CJK characters).
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
MERGES_HEADER = "#version: 0.2"  # first line of CLIP's merges.txt; readers skip it


# -- bytes as printable characters --------------------------------------------------------------------------------
def bytes_to_unicode() -> dict[int, str]:
    """Map each of the 256 byte values to one printable character (GPT-2 / CLIP's table).

    BPE works on strings of symbols and the vocabulary is stored as JSON text, so every byte needs a visible,
    non-space stand-in. Bytes that already print as themselves ('!'..'~', '¡'..'¬', '®'..'ÿ') keep their own
    character; the other 68 (controls, space, ...) are given the characters from U+0100 on, in byte order.
    The dict's order (printable bytes first) is also the order of the first 256 ids in CLIP's vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def base_vocabulary() -> list[str]:
    """The 512 symbols every CLIP vocabulary starts with: each byte, then each byte ending a word."""
    chars = list(BYTE_ENCODER.values())
    return chars + [c + END_OF_WORD for c in chars]


# -- normalization --------------------------------------------------------------------------------------------------
# Unicode's White_Space property: what the reference's regex engine (Oniguruma) means by \s. Python's own \s and
# str.isspace() also accept U+001C..U+001F, which CLIP keeps as ordinary (punctuation-like) characters.
WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
              "\u2028\u2029\u202f\u205f\u3000")
_WHITESPACE_RUN = re.compile(f"[{re.escape(WHITESPACE)}]+")


def normalize(text: str) -> str:
    """CLIP's text cleanup: Unicode NFC, every whitespace run becomes one space, lower case.

    NFC first so that "e" + combining acute and the single character "é" become the same bytes. Lower-casing is
    done one character at a time, as the reference does: Python's ``str.lower`` would turn a word-final "Σ" into
    "ς", the reference gives "σ".
    """
    text = unicodedata.normalize("NFC", text)
    text = _WHITESPACE_RUN.sub(" ", text)
    return "".join(ch.lower() for ch in text)


# -- pre-tokenization: splitting text into words --------------------------------------------------------------------
def _category_class(first_letter: str) -> str:
    """Body of a regex character class holding every code point whose Unicode category starts with ``first_letter``.

    Python's ``re`` has no ``\\p{L}``. ``[^\\W\\d_]`` comes close but counts "²", "½", "Ⅻ" (categories No, Nl) as
    letters, so we list the code points ourselves, as ranges, from the Unicode database Python ships.
    """
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] == first_letter
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(cp - 1)) if cp - 1 > start else ""))
            start = None
    return "".join(ranges)


@functools.cache
def _word_pattern() -> re.Pattern:
    """CLIP's word pattern, the reference's regex with \\p{L} (letters) and \\p{N} (numbers) spelled out for ``re``.

    A word is one of: a special-token string, an English contraction suffix ('s 't 're 've 'm 'll 'd), a run of
    letters, ONE digit (so numbers are spelled digit by digit), or a run of other non-space characters
    (punctuation, symbols, emoji, combining marks). Whitespace separates words and is dropped. Alternatives are
    tried left to right, so "it's" gives "it", "'s". Built on first use (about 0.2 s to scan the Unicode table).
    """
    letter, number = _category_class("L"), _category_class("N")
    space = re.escape(WHITESPACE)
    specials = f"{re.escape(BOS_TOKEN)}|{re.escape(EOS_TOKEN)}"
    return re.compile(f"{specials}|'s|'t|'re|'ve|'m|'ll|'d|[{letter}]+|[{number}]|[^{space}{letter}{number}]+")


def pre_tokenize(normalized_text: str) -> list[str]:
    """Split normalized text into the words BPE encodes independently, e.g. "a café!" -> ["a", "café", "!"].

    A word that spells a special token ("<|endoftext|>" written in upper case becomes one after lower-casing) is
    cut into "<|", "endoftext", "|>": the reference applies GPT-2's byte-level split after CLIP's, and that is the
    only kind of word on which it has any effect (every other word is all letters, one digit, all non-letters,
    or a contraction, which GPT-2's pattern also keeps whole). Real special tokens never get here: the tokenizer
    takes them out of the raw text first.
    """
    words = []
    for word in _word_pattern().findall(normalized_text):
        if word in (BOS_TOKEN, EOS_TOKEN):
            words.extend(["<|", word[2:-2], "|>"])
        else:
            words.append(word)
    return words


def split_special(text: str, special_tokens) -> list[str]:
    """Cut raw text around exact occurrences of special tokens: "a<|endoftext|>b" -> ["a", "<|endoftext|>", "b"].

    Matching is case-sensitive and happens before normalization, as in the reference. Empty pieces are dropped.
    """
    tokens = sorted(set(special_tokens), key=lambda t: (-len(t), t))  # longest first: none hides a longer one
    if not tokens:
        return [text] if text else []
    pattern = "(" + "|".join(map(re.escape, tokens)) + ")"
    return [piece for piece in re.split(pattern, text) if piece]


def word_symbols(word: str) -> tuple[str, ...]:
    """A word as BPE's starting symbols: one character per UTF-8 byte, ``</w>`` glued to the last one."""
    chars = [BYTE_ENCODER[b] for b in word.encode("utf-8")]
    chars[-1] += END_OF_WORD
    return tuple(chars)


def merge_pair(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Fuse every occurrence of ``pair`` in ``symbols``, scanning left to right: (a, a, a) with (a, a) -> (aa, a)."""
    first, second = pair
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
            out.append(first + second)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


# -- training -------------------------------------------------------------------------------------------------------
def train_bpe(corpus: list[str], vocab_size: int, min_frequency: int = 2,
              special_tokens: tuple[str, ...] = (BOS_TOKEN, EOS_TOKEN)) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn BPE merges from ``corpus`` (Sennrich et al. 2016), laid out like CLIP's vocabulary.

    Texts are cleaned and split exactly as the tokenizer does; each distinct word is counted once with its
    frequency. Then, until the vocabulary is full: count every adjacent symbol pair over all words (weighted by
    word frequency), fuse the most frequent pair everywhere, record it. Ties go to the pair that sorts first, so
    the result never depends on dict order. Training stops early when no pair occurs ``min_frequency`` times.

    Returns ``(vocab, merges)``: vocab maps token -> id in CLIP's order (256 bytes, 256 bytes + ``</w>``, one token
    per merge, then the special tokens), so ``len(vocab) <= vocab_size``. A merge that recreates an existing token
    (("a", "bc") after ("ab", "c")) is recorded but adds no new id.
    """
    tokens = base_vocabulary()
    if vocab_size < len(tokens) + len(special_tokens):
        raise ValueError(f"train_bpe: vocab_size={vocab_size} is too small; the byte alphabet and special tokens "
                         f"alone take {len(tokens) + len(special_tokens)}")
    word_counts = Counter()
    for text in corpus:
        for piece in split_special(text, special_tokens):
            if piece not in special_tokens:
                word_counts.update(pre_tokenize(normalize(piece)))
    words = Counter({word_symbols(word): n for word, n in word_counts.items()})

    known, merges = set(tokens), []
    while len(tokens) + len(special_tokens) < vocab_size:
        pair_counts = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += n
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))  # most frequent, then first in order
        if pair_counts[best] < min_frequency:
            break
        merges.append(best)
        words = Counter({merge_pair(symbols, best): n for symbols, n in words.items()})
        if best[0] + best[1] not in known:
            known.add(best[0] + best[1])
            tokens.append(best[0] + best[1])
    vocab = {token: i for i, token in enumerate(tokens + list(special_tokens))}
    return vocab, merges


# -- the two files: vocab.json and merges.txt ----------------------------------------------------------------------
def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_vocab(folder, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Write ``vocab.json`` (token -> id, in id order) and ``merges.txt`` (header, then one "a b" pair per line)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    write_text_atomic(folder / "vocab.json", json.dumps(ordered, ensure_ascii=False, indent=2) + "\n")
    write_text_atomic(folder / "merges.txt", "\n".join([MERGES_HEADER, *(f"{a} {b}" for a, b in merges)]) + "\n")


def load_vocab(folder) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read ``vocab.json`` and ``merges.txt`` from ``folder``, with errors that name the file and line."""
    folder = Path(folder)
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    for path in (vocab_path, merges_path):
        if not path.is_file():
            raise FileNotFoundError(f"CLIPTokenizer: {path} not found (a tokenizer folder holds vocab.json and "
                                    f"merges.txt)")
    try:
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"CLIPTokenizer: {vocab_path} is not valid JSON: {e}") from None
    if not isinstance(vocab, dict) or not all(isinstance(k, str) and type(v) is int for k, v in vocab.items()):
        raise ValueError(f"CLIPTokenizer: {vocab_path} must hold one JSON object mapping token strings to integer ids")

    merges = []
    for number, line in enumerate(merges_path.read_text(encoding="utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if (number == 1 and line.startswith("#version")) or not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"CLIPTokenizer: {merges_path} line {number}: expected two symbols separated by one "
                             f"space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return vocab, merges
