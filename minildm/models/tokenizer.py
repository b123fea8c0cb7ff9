"""CLIPTokenizer: turns prompts into the (B, 77) token ids the CLIP text encoder reads.

    tok = CLIPTokenizer.from_pretrained("weights/tokenizer")      # vocab.json + merges.txt (+ tokenizer_config.json)
    batch = tok(["a red circle", "a blue square"])                # padded to 77, truncated to 77
    batch.input_ids         # (2, 77) int64: <|startoftext|> a red circle <|endoftext|> <|endoftext|> ...
    batch.attention_mask    # (2, 77) int64: 1 on real tokens (BOS and EOS included), 0 on padding

Text -> ids, step by step (the text steps live in ``bpe.py``):
  1. cut out special tokens written in the text ("<|endoftext|>"), matched exactly, before anything else;
  2. normalize (NFC, collapse whitespace, lower case) and split into words (letters, single digits, punctuation);
  3. each word -> UTF-8 bytes -> printable byte characters, ``</w>`` on the last one -> apply BPE merges;
  4. tokens -> ids; add BOS/EOS, truncate, pad.

Byte-pair encoding (Sennrich et al. 2016) on bytes, as in CLIP (Radford et al. 2021). Tested token-for-token equal
to transformers' ``CLIPTokenizer`` (transformers >= 5; that version no longer has the ftfy/BasicTokenizer path).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np  # host-side on purpose: ids are built from Python strings; the text encoder moves them

from .bpe import (BOS_TOKEN, BYTE_DECODER, EOS_TOKEN, END_OF_WORD, load_vocab, merge_pair, normalize,
                  pre_tokenize, save_vocab, split_special, word_symbols, write_text_atomic)


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``batch["input_ids"]``) that also reads as attributes (``batch.input_ids``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class WordSplit(NamedTuple):
    """A word the vocabulary does not hold whole, and the pieces the tokenizer cuts it into."""
    word: str
    pieces: list[str]


class CLIPTokenizer:
    """Byte-level BPE tokenizer with CLIP's vocabulary layout and transformers' ``CLIPTokenizer`` interface.

    Args:
        vocab: token -> id, as in ``vocab.json`` (must contain the special tokens).
        merges: BPE merges in priority order, as in ``merges.txt``; the first merge is applied first.
        bos_token / eos_token: start and end of every sequence (CLIP: "<|startoftext|>" / "<|endoftext|>").
        pad_token: fills sequences up to ``max_length``. Stable Diffusion v1 pads with "<|endoftext|>", v2 with "!".
        unk_token: stands for a symbol missing from the vocabulary (never needed with a full byte alphabet).
        model_max_length: the text encoder's context length; CLIP's is 77.
    """

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], *, bos_token: str = BOS_TOKEN,
                 eos_token: str = EOS_TOKEN, pad_token: str = EOS_TOKEN, unk_token: str = EOS_TOKEN,
                 model_max_length: int = 77):
        self.encoder = dict(vocab)
        self.decoder = {i: token for token, i in self.encoder.items()}
        if len(self.decoder) != len(self.encoder):
            raise ValueError("CLIPTokenizer: vocab gives the same id to two tokens")
        for name, token in [("bos_token", bos_token), ("eos_token", eos_token), ("pad_token", pad_token),
                            ("unk_token", unk_token)]:
            if token not in self.encoder:
                raise ValueError(f"CLIPTokenizer: {name} {token!r} is not in the vocabulary")
        for i, (a, b) in enumerate(merges):
            for part in (a, b, a + b):
                if part not in self.encoder:
                    raise ValueError(f"CLIPTokenizer: merge #{i} ({a!r}, {b!r}) uses {part!r}, which is not in "
                                     f"the vocabulary")
        # Rank = position in merges.txt: BPE always applies the lowest-ranked (earliest learned) pair first.
        self.bpe_ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
        self.bos_token, self.eos_token, self.pad_token, self.unk_token = bos_token, eos_token, pad_token, unk_token
        self.model_max_length = model_max_length
        # Every special token written literally in a text is matched before normalization, as transformers does.
        self.all_special_tokens = list(dict.fromkeys([bos_token, eos_token, unk_token, pad_token]))
        self._cache: dict[str, tuple[str, ...]] = {}  # word -> its BPE tokens; prompts repeat words a lot

    # -- files ---------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder, **overrides) -> CLIPTokenizer:
        """Load ``vocab.json`` and ``merges.txt``, plus settings from ``tokenizer_config.json`` and
        ``special_tokens_map.json`` when present (later sources win; keyword ``overrides`` win over both)."""
        folder = Path(folder)
        vocab, merges = load_vocab(folder)
        settings = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = folder / name
            if path.is_file():
                config = json.loads(path.read_text(encoding="utf-8"))
                for key in ("bos_token", "eos_token", "pad_token", "unk_token", "model_max_length"):
                    if key in config:
                        value = config[key]  # a token may be saved as {"content": "<|endoftext|>", ...}
                        settings[key] = value["content"] if isinstance(value, dict) else value
        if settings.get("model_max_length", 0) >= 10**9:  # transformers writes ~1e30 for "no limit set"
            del settings["model_max_length"]
        settings.update(overrides)
        return cls(vocab, merges, **settings)

    def save_pretrained(self, folder) -> None:
        """Write vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json (each atomically)."""
        folder = Path(folder)
        merges = sorted(self.bpe_ranks, key=self.bpe_ranks.get)
        save_vocab(folder, self.encoder, merges)
        special = {"bos_token": self.bos_token, "eos_token": self.eos_token, "pad_token": self.pad_token,
                   "unk_token": self.unk_token}
        config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": self.model_max_length, **special}
        for name, content in [("tokenizer_config.json", config), ("special_tokens_map.json", special)]:
            write_text_atomic(folder / name, json.dumps(content, ensure_ascii=False, indent=2) + "\n")

    # -- sizes and special ids -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def __len__(self) -> int:
        return len(self.encoder)

    bos_token_id = property(lambda self: self.encoder[self.bos_token])
    eos_token_id = property(lambda self: self.encoder[self.eos_token])
    pad_token_id = property(lambda self: self.encoder[self.pad_token])
    unk_token_id = property(lambda self: self.encoder[self.unk_token])

    @property
    def all_special_ids(self) -> list[int]:
        return [self.encoder[token] for token in self.all_special_tokens]

    # -- text -> tokens ------------------------------------------------------------------------------------------
    def bpe(self, word: str) -> tuple[str, ...]:
        """Encode one word: start from its byte symbols, apply the best-ranked merge present until none applies.

        "red" -> ("r", "e", "d</w>") -> ("re", "d</w>") -> ("red</w>",) with merges [("r", "e"), ("re", "d</w>")].
        """
        if word in self._cache:
            return self._cache[word]
        symbols = word_symbols(word)
        while len(symbols) > 1:
            ranked = [(self.bpe_ranks[pair], pair) for pair in zip(symbols, symbols[1:]) if pair in self.bpe_ranks]
            if not ranked:
                break
            symbols = merge_pair(symbols, min(ranked)[1])
        self._cache[word] = symbols
        return self._cache[word]

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings, e.g. "A red circle." -> ["a</w>", "red</w>", "circle</w>", ".</w>"] (no BOS/EOS
        added; special tokens written in the text are kept as themselves)."""
        tokens = []
        for piece in split_special(text, self.all_special_tokens):
            if piece in self.all_special_tokens:
                tokens.append(piece)
            else:
                for word in pre_tokenize(normalize(piece)):
                    tokens.extend(self.bpe(word))
        return tokens

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self.encoder.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids) -> list[str]:
        ids = [int(i) for i in ids]
        unknown = [i for i in ids if i not in self.decoder]
        if unknown:
            raise ValueError(f"CLIPTokenizer: token id {unknown[0]} is outside the vocabulary (size {len(self)})")
        return [self.decoder[i] for i in ids]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids, with BOS/EOS around them; no truncation, no padding (``__call__`` does those)."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        return [self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids

    def __call__(self, text: str | list[str], padding: bool | str = "max_length", max_length: int | None = None,
                 truncation: bool = True, return_tensors: str | None = "np",
                 add_special_tokens: bool = True) -> BatchEncoding:
        """Tokenize a prompt or a batch of prompts into ``input_ids`` and ``attention_mask``.

        The defaults are what Stable Diffusion always uses (transformers' own defaults pad and truncate nothing).
        ``padding``: "max_length" pads to ``max_length``; "longest" or True to the longest prompt; False or
        "do_not_pad" leaves lengths alone. ``max_length`` defaults to ``model_max_length`` (77).
        ``truncation=True`` cuts a long prompt to ``max_length`` tokens keeping BOS first and EOS last, as CLIP
        does. ``return_tensors="np"`` gives (B, T) int64 arrays (B = 1 for a single string); None gives lists.
        """
        if isinstance(text, str):
            texts, single = [text], True
        elif isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
            texts, single = list(text), False
        else:
            raise TypeError(f"CLIPTokenizer: expected a string or a list of strings, got {type(text).__name__}")
        if not texts:
            raise ValueError("CLIPTokenizer: got an empty list of prompts")
        if padding not in (True, False, "max_length", "longest", "do_not_pad"):
            raise ValueError(f"CLIPTokenizer: padding={padding!r}; use 'max_length', 'longest' or False")
        if return_tensors not in ("np", None):
            raise ValueError(f"CLIPTokenizer: return_tensors={return_tensors!r}; minildm returns 'np' arrays or "
                             f"lists (None)")
        max_length = self.model_max_length if max_length is None else max_length
        n_special = 2 if add_special_tokens else 0
        if truncation and max_length < n_special:
            raise ValueError(f"CLIPTokenizer: max_length={max_length} leaves no room for BOS and EOS")

        rows = []
        for t in texts:
            ids = self.encode(t, add_special_tokens=False)
            if truncation and len(ids) + n_special > max_length:
                ids = ids[:max_length - n_special]  # drop the end of the prompt, never the closing EOS
            rows.append([self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids)

        if padding == "max_length":
            target = max_length
        elif padding in (True, "longest"):
            target = max(len(row) for row in rows)
        else:
            target = None
        masks = [[1] * len(row) for row in rows]
        if target is not None:
            for row, mask in zip(rows, masks):
                extra = max(target - len(row), 0)
                row.extend([self.pad_token_id] * extra)
                mask.extend([0] * extra)
        if return_tensors == "np":
            if len({len(row) for row in rows}) > 1:
                raise ValueError("CLIPTokenizer: prompts have different lengths; use padding='max_length' or "
                                 "'longest' to return an array")
            return BatchEncoding(input_ids=np.array(rows, dtype=np.int64).reshape(len(rows), -1),
                                 attention_mask=np.array(masks, dtype=np.int64).reshape(len(rows), -1))
        if single:
            rows, masks = rows[0], masks[0]
        return BatchEncoding(input_ids=rows, attention_mask=masks)

    # -- ids -> text ---------------------------------------------------------------------------------------------
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Token strings -> text: byte characters back to UTF-8, then each ``</w>`` back to a space between words.

        Bytes that are not valid UTF-8 (a multi-byte character cut in half) become U+FFFD "�", never an error.
        """
        data = bytes(BYTE_DECODER[c] for c in "".join(tokens))
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Ids -> text, e.g. [bos, a, red, circle, eos] -> "<|startoftext|>a red circle <|endoftext|>"
        (with ``skip_special_tokens=True``: "a red circle"). Words come back separated by single spaces."""
        tokens = self.convert_ids_to_tokens(np.asarray(ids).reshape(-1).tolist())
        if skip_special_tokens:
            tokens = [token for token in tokens if token not in self.all_special_tokens]
        return self.convert_tokens_to_string(tokens)

    def batch_decode(self, batch, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    # -- vocabulary coverage -------------------------------------------------------------------------------------
    def unknown_words(self, text: str) -> list[WordSplit]:
        """Words of ``text`` that the vocabulary does not hold whole, each with the pieces it is cut into.

        Byte-level BPE can encode anything, but a word cut into several pieces is one the model rarely (or never)
        saw during training: "a crimson circle" -> [WordSplit("crimson", ["cr", "im", "son"])] (the pieces depend
        on the vocabulary). Pieces are shown as text; a piece that is part of a multi-byte character shows its
        bytes ("\\xc3"). Each word is listed once, in order of first appearance; special tokens never are.
        """
        found = {}
        for piece in split_special(text, self.all_special_tokens):
            if piece in self.all_special_tokens:
                continue
            for word in pre_tokenize(normalize(piece)):
                tokens = self.bpe(word)
                if len(tokens) > 1 or tokens[0] not in self.encoder:
                    found.setdefault(word, WordSplit(word, [self._readable(token) for token in tokens]))
        return list(found.values())

    @staticmethod
    def _readable(token: str) -> str:
        data = bytes(BYTE_DECODER[c] for c in token.removesuffix(END_OF_WORD))
        return data.decode("utf-8", errors="backslashreplace")

    def __repr__(self) -> str:
        return (f"CLIPTokenizer(vocab_size={self.vocab_size}, merges={len(self.bpe_ranks)}, "
                f"model_max_length={self.model_max_length}, pad_token={self.pad_token!r})")
